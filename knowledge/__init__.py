"""The knowledge base: topics, sources, synonyms and prefecture data, kept as YAML.

This package knows nothing of chat channels or storage. ``load_knowledge`` reads
and validates every file once; a broken file raises ``KnowledgeError`` naming
the file and the entry at fault.
"""

from knowledge.loader import KnowledgeBase, KnowledgeError, load_knowledge

__all__ = ["KnowledgeBase", "KnowledgeError", "load_knowledge"]
