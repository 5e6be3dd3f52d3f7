"""Japanese text handling for matching: normalisation, features, ranking.

Nothing here knows about chat channels, storage or the knowledge-base files;
it works on plain strings and ``Entry`` records.
"""
