"""rag_engine."""
