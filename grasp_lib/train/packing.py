"""Packing rows that share prefixes into token tries: the layout of the shared-prefix forward (torch only).

Rows are merged into a trie (a node per distinct prefix), laid out as one packed sequence per trie. Each
token's position id is its depth in the trie, and the attention mask lets a token see exactly its
ancestors and itself (tree attention), so a row's hidden states equal those of its own padded forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# A packed row holds at most this many tokens (more rows start another packed row): attention over a
# packed row is dense, so its cost grows with the square of its length
MAX_PACKED_TOKENS = 1024
NO_PARENT = -1


@dataclass
class Packed:
    input_ids: torch.Tensor  # [bins, width]
    position_ids: torch.Tensor  # [bins, width]: depth in the trie
    allowed: torch.Tensor  # [bins, 1, width, width] bool: query may attend key (its ancestors and itself)
    nodes: list[list[int]]  # per row: flat index (bin * width + column) of each of its tokens


class Trie:
    """Token trie of one packed row. Node n is column n of the packed row: its token, its depth and its
    parent (NO_PARENT for a row's first token). Nodes are numbered in insertion order, so a parent
    precedes its children."""

    def __init__(self):
        self.tokens: list[int] = []
        self.depths: list[int] = []
        self.parents: list[int] = []
        self._child: dict[tuple[int, int], int] = {}  # (parent, token) -> node

    def __len__(self) -> int:
        return len(self.tokens)

    def new_tokens(self, row: list[int]) -> int:
        """How many tokens of `row` the trie does not hold yet."""
        parent = NO_PARENT
        for depth, token in enumerate(row):
            parent = self._child.get((parent, token))
            if parent is None:
                return len(row) - depth
        return 0

    def insert(self, row: list[int]) -> list[int]:
        """Add `row`; returns the node of each of its tokens."""
        path, parent = [], NO_PARENT
        for depth, token in enumerate(row):
            node = self._child.get((parent, token))
            if node is None:
                node = len(self.tokens)
                self._child[(parent, token)] = node
                self.tokens.append(token)
                self.depths.append(depth)
                self.parents.append(parent)
            path.append(node)
            parent = node
        return path

    def ancestors(self, width: int) -> torch.Tensor:
        """[width, width] bool: node n sees its ancestors and itself; padding columns see only themselves,
        so no query row is fully masked."""
        allowed = torch.eye(width, dtype=torch.bool)
        for node, parent in enumerate(self.parents):
            if parent != NO_PARENT:
                allowed[node] |= allowed[parent]  # the parent's row already holds all its ancestors
        return allowed


def pack_rows(rows: list[list[int]], max_tokens: int = MAX_PACKED_TOKENS, pad_id: int = 0) -> Packed:
    """Merge token rows into tries (a new packed row when one would exceed `max_tokens`) and lay them out."""
    tries, where = [Trie()], []
    for row in rows:
        if len(tries[-1]) and len(tries[-1]) + tries[-1].new_tokens(row) > max_tokens:
            tries.append(Trie())
        where.append((len(tries) - 1, tries[-1].insert(row)))
    width = max(len(t) for t in tries)
    ids = torch.full((len(tries), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(tries), width), dtype=torch.long)
    for b, trie in enumerate(tries):
        ids[b, :len(trie)] = torch.tensor(trie.tokens, dtype=torch.long)
        positions[b, :len(trie)] = torch.tensor(trie.depths, dtype=torch.long)
    allowed = torch.stack([t.ancestors(width) for t in tries])[:, None]
    return Packed(ids, positions, allowed, [[b * width + n for n in path] for b, path in where])


def attention_mask_4d(allowed: torch.Tensor, implementation: str) -> torch.Tensor:
    """SDPA takes the boolean mask; eager attention adds the mask to its scores."""
    if implementation == "sdpa":
        return allowed
    return torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
