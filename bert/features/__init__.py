"""Contextual token embeddings of a pre-trained BERT (extract_features)."""
