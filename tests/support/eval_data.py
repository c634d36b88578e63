"""Helpers for the evaluation tests: a tiny cross-encoder built offline and a tiny BEIR data set."""

from __future__ import annotations

import json
from pathlib import Path

_WORDS = """the a of to and in is for on with how do i get vpn access request expense limit team dinner deploy
friday afternoon approvals merge pull request per diem trip seattle core hours report phishing email rerun ci
pipeline vacation days holiday policy manager laptop password security onboarding payroll travel hotel night"""


def build_tiny_cross_encoder(path: Path, seed: int = 3) -> Path:
    """A 2-layer BERT sequence classifier (one logit) with a WordPiece tokenizer trained here, saved by path."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator([_WORDS] * 3, trainers.WordPieceTrainer(vocab_size=400, special_tokens=special,
                                                                   show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1,
                        initializer_range=0.5)  # wide init: well-separated logits, no near-ties
    model = BertForSequenceClassification(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def write_beir(root: Path, corpus: dict[str, tuple[str, str]], queries: dict[str, str],
               qrels: dict[str, dict[str, int]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in corpus.items()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return root
