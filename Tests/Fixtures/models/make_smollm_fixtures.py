#!/usr/bin/env python3
"""Reference outputs of SmolLM2-135M-Instruct for Heed's Llama decoder.

transformers loads the same GGUF file Heed reads (models/SmolLM2-135M-Instruct.Q4_1.gguf,
fetched by scripts/fetch-models.sh), dequantises every tensor to float32 and
undoes llama.cpp's Q/K row permutation; the forward pass runs in float32 on CPU.
No hub, no network.

Writes (next to this script):
  smollm_reference.json   for each prompt: the prompt ids, the last-token logits'
                          top-100 ids and values, sum, sum of squares and max of the
                          full 49,152-vector; greedy continuations.
  smollm_logits_story.f32 the full last-token logits (little-endian float32) of the
                          story prompt (196,608 bytes).

Usage: /work/venv-torch/bin/python Tests/Fixtures/models/make_smollm_fixtures.py [MODELS_DIR]
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
MODELS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

STORY = "Once upon a time, there was a little"
PROMPTS = [
    ("story", STORY, False),
    ("fact", "The capital of France is", False),
    ("chat", "What is the tallest mountain in the world?", True),
]
GREEDY_TOKENS = 24


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(MODELS, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(MODELS, gguf_file=GGUF, dtype=torch.float32)
    model.eval()

    cases = []
    for name, text, chat in PROMPTS:
        if chat:
            rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                     tokenize=False, add_generation_prompt=True)
        else:
            rendered = text
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].double().numpy().astype(np.float32)
            generated = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                       attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                       eos_token_id=2, pad_token_id=2)[0, len(ids):].tolist()
        top = np.argsort(-logits, kind="stable")[:100]
        case = {
            "name": name,
            "text": text,
            "chat": chat,
            "rendered": rendered,
            "prompt_ids": ids,
            "top_ids": top.tolist(),
            "top_values": [float(logits[i]) for i in top],
            "sum": float(logits.astype(np.float64).sum()),
            "sum_squares": float((logits.astype(np.float64) ** 2).sum()),
            "greedy": generated,
            "greedy_text": tokenizer.decode(generated),
        }
        cases.append(case)
        print(name, ids, generated, repr(case["greedy_text"]))
        if name == "story":
            logits.astype("<f4").tofile(os.path.join(HERE, "smollm_logits_story.f32"))

    with open(os.path.join(HERE, "smollm_reference.json"), "w") as f:
        json.dump({"model": GGUF, "greedy_tokens": GREEDY_TOKENS, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
