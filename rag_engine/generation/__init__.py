"""Answer generators: the extractive baseline and model-based backends.

Importing this package is cheap (no torch); backends load on demand through
:func:`rag_engine.generation.factory.build_generator`.
"""

from rag_engine.generation.ask_back import clarifying_question
from rag_engine.generation.base import AdapterSwitching, GenerationError, Generator
from rag_engine.generation.citations import parse_citations
from rag_engine.generation.factory import build_generator
from rag_engine.generation.prompting import PROMPT_VERSION

__all__ = [
    "PROMPT_VERSION",
    "AdapterSwitching",
    "GenerationError",
    "Generator",
    "build_generator",
    "clarifying_question",
    "parse_citations",
]
