"""Tiny random models with real tokenizers, built offline, for tests.

Everything here is written to a directory with ``save_pretrained`` and is meant to
be loaded back *by path* through the production code (the generator backend, the
trainer), so tests exercise the same loading path a real checkpoint takes.
Building either model takes well under a second on a laptop CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

from rag_engine.generation.prompting import SYSTEM_PROMPT

# SmolLM2-style ChatML template, so the tiny model takes the chat-template path.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# A few hundred words of handbook-like text: enough for a byte-level BPE whose
# merges cover the words the tests use, and any other text still encodes (bytes).
_CORPUS = """
Welcome to the Acme handbook. This handbook explains how the team works, where
documents live and who to ask. Every employee gets twenty five days of paid
vacation per year. Vacation requests go to your manager at least two weeks ahead.
Unused vacation days carry over to the next year, up to five days. Sick leave is
separate from vacation and needs a doctor's note after three days.
Remote work is allowed two days a week. The office is open from eight to six.
Expenses are reimbursed within thirty days when you submit the receipt in the
finance portal. Travel must be booked through the travel desk. Hotels up to one
hundred and fifty euros per night are approved without review.
The deploy process: open a pull request, get one review, merge to main, and the
pipeline deploys to staging. Production deploys happen on Tuesday and Thursday.
Rollbacks are done with the deploy tool by choosing the previous release.
On call engineers answer pages within fifteen minutes. Incidents get a postmortem
within a week. Security questions go to the security team channel. Passwords are
stored in the password manager; never paste secrets into chat.
The onboarding checklist covers the laptop, accounts, the handbook and a first
meeting with your buddy. Questions about payroll go to people operations.
Answer the question using only the passages. Cite passages as [1] or [2].
If the passages do not contain the answer, say that the documents do not say.
{system_prompt}
<passage n="1" title="Handbook › Vacation">
</passage>
Passages: Question: Instructions: User: Assistant:
Question: how many vacation days do I get? Answer: twenty five days [1].
Question: when are production deploys? Answer: on Tuesday and Thursday [2].
What, when, where, who, why and how: the team writes things down so that
everyone can find them. Policy, process, guide, runbook, checklist, wiki, page.
"""

LLAMA_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
T5_SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]  # T5 convention: pad=0 (also decoder start), eos=1


def _train_bpe(special_tokens: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The answer prompt's fixed text is in the corpus so prompts take a realistic
    # number of tokens instead of hundreds of byte-level pieces.
    corpus = _CORPUS.replace("{system_prompt}", SYSTEM_PROMPT)
    lines = [line for line in corpus.splitlines() if line.strip()]
    tokenizer.train_from_iterator(lines * 4, trainer=trainer)
    return tokenizer


def build_llama_tokenizer(vocab_size: int = 1000, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Byte-level BPE tokenizer with ChatML special tokens and chat template."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_train_bpe(LLAMA_SPECIAL_TOKENS, vocab_size),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|im_end|>",  # like SmolLM2: the end-of-turn token stops generation
        pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "</s>"],
        model_max_length=model_max_length,
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def build_t5_tokenizer(vocab_size: int = 1000, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Byte-level BPE tokenizer with T5's special tokens and no chat template."""
    return PreTrainedTokenizerFast(
        tokenizer_object=_train_bpe(T5_SPECIAL_TOKENS, vocab_size),
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )


def _mute_special_tokens(model: PreTrainedModel, tok: PreTrainedTokenizerFast) -> None:
    """Zero the output rows of special tokens.

    A random model may pick EOS first and return an empty answer; with these
    logits at 0 among random ones, greedy decoding always emits visible text.
    """
    with torch.no_grad():
        weight = model.get_output_embeddings().weight
        weight[tok.all_special_ids] = 0.0


def make_tiny_llama(
    path: Path, *, seed: int = 0, hidden_size: int = 64, max_positions: int = 512, mute_special_tokens: bool = True
) -> Path:
    """Write a 2-layer Llama-style causal LM (random weights) and its tokenizer to ``path``."""
    path = Path(path)
    tok = build_llama_tokenizer(model_max_length=max_positions)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        # a wider init than 0.02 so logits are far from uniform: adapters and
        # decoding strategies then visibly change the output
        initializer_range=0.2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    if mute_special_tokens:
        _mute_special_tokens(model, tok)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_tiny_t5(
    path: Path, *, seed: int = 0, d_model: int = 64, max_positions: int = 512, mute_special_tokens: bool = True
) -> Path:
    """Write a tiny T5 (2+2 layers, random weights) and its tokenizer to ``path``.

    T5 has relative positions and no fixed context; the tokenizer's
    ``model_max_length`` carries the limit, as it does for real T5 checkpoints.
    """
    path = Path(path)
    tok = build_t5_tokenizer(model_max_length=max_positions)
    config = T5Config(
        vocab_size=len(tok),
        d_model=d_model,
        d_kv=16,
        d_ff=d_model * 2,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    config.decoder_start_token_id = tok.pad_token_id  # not in T5Config's typed signature; set like any config field
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config).eval()
    if mute_special_tokens:
        _mute_special_tokens(model, tok)
    model.generation_config.decoder_start_token_id = tok.pad_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_lora_adapter(
    base_path: Path,
    out_path: Path,
    *,
    seed: int = 1,
    r: int = 4,
    target_modules: tuple[str, ...] = ("q_proj", "v_proj"),
    scale: float = 1.0,
) -> Path:
    """Save a LoRA adapter for the causal model at ``base_path`` with non-zero B weights.

    A freshly initialised LoRA has B = 0 (a no-op); ``init_lora_weights=False``
    makes both A and B random so the adapter changes the output, which tests of
    loading and switching need. ``scale`` multiplies B to strengthen the effect.
    """
    from peft import LoraConfig, get_peft_model  # lazy: only adapter fixtures need peft, which imports slowly

    base = AutoModelForCausalLM.from_pretrained(base_path)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=r,
        lora_alpha=2 * r,
        target_modules=list(target_modules),
        lora_dropout=0.0,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(base, config)
    if scale != 1.0:
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.mul_(scale)
    peft_model.save_pretrained(str(out_path))
    return Path(out_path)
