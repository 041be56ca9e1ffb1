"""The street's structure: street ⊃ community ⊃ grid."""
