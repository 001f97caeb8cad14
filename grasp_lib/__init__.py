"""GRASP: fine-tune a causal LM to extract structured facts from biomedical text (SFT, then GRPO).

Rooms and their allowed imports are described in DESIGN.md; notebooks call these modules.
"""

__version__ = "0.1.0"
