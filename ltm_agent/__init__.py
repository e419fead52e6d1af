"""ltm-agent: long-term memory for LangGraph and LlamaIndex agents on Chroma."""
