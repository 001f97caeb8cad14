"""Grounded decoding: every answer follows its task family's JSON schema and every mention is copied from the input.

Per prompt, a small schema tree (`answer_schema`) describes the answer the prompt asks for, in the exact
format of the training targets (`prompts.build_target`: `json.dumps` separators, `ensure_ascii=False`):

- ner: {"Type": ["mention", ...], ...}: the task's types as keys, in the task's order, each optional
  (the targets list them all; leaving some out is still valid and closes faster near the token limit);
- triples: [["head", "REL", "tail"], ...]; joint: {"entities": {...}, "relations": [[...]]};
- nary: [{"drugs": ["a", "b"], "label": "POS"}, ...]; re: {"relation": "<label>"};
- qa: {"answer": "..."} (free text: answers are not spans of the input, only valid JSON strings);
- a "mention" (NER mentions, triple heads and tails, drugs) is a non-empty substring of the input text,
  case-sensitive (the strict metric wants verbatim spans); labels and types are the task's label set;
- the `reasoning` prompt level: an optional `<think>...</think>` block of free text before the answer;
  the `confidence` level: an optional last line "\\nConfidence: N%" (N in 0..100) after the answer;
- end-of-turn only once the answer is complete.

The token masks come from llguidance (a maintained Rust library: Earley parser over a byte-level lexer
walked along a token trie of the vocabulary). Its `substring_chunks` regex gives the substring constraint,
with one chunk per character of the text written as it appears inside a JSON string (`"` as `\\"`, `\\` as
`\\\\`), so a mention can never stop inside an escape and JSON escapes map to the raw characters of the text.
It works on bytes, so SmolLM2's byte-level BPE tokens that hold part of a UTF-8 character, and tokens that
merge the closing quote with structure (`",`, `"]`, `"]}`), are allowed exactly when their bytes fit.

What llguidance cannot know is the token budget. The schema tree therefore also gives, for any valid
prefix, a shortest valid ending (`Answer.closing`), and a bound on its length in bytes. Near
max_new_tokens a row may only take tokens after which that ending still fits in the tokens left (one
token per byte at worst), and once it no longer has slack it writes the ending. So a row that reaches the
token limit still ends with a complete answer, and the constraint never leaves a row without a token.
"""

from __future__ import annotations

import bisect
import json
import weakref
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

from .prompts import CONFIDENCE_LINE
from .tasks import TaskSpec, family_of, get_task

THINK_OPEN, THINK_CLOSE = b"<think>", b"</think>"
CONFIDENCE_HEAD = ("\n" + CONFIDENCE_LINE.split("{", 1)[0]).encode()  # b"\nConfidence: "
FREE_STRING = r'/"(\\([\"\\\/bfnrt]|u[a-fA-F0-9]{4})|[^\"\\\x00-\x1F\x7F])*"/'


class SchemaError(ValueError):
    """A prefix that the schema does not accept (a bug: prefixes come from the grammar's own masks)."""


def _lit(s: bytes, i: int, lit: bytes) -> tuple[int, bytes | None]:
    """Match literal `lit` at s[i:]: (end, None) when whole, (len(s), what is missing) when s ends inside it."""
    if s.startswith(lit, i):
        return i + len(lit), None
    if lit.startswith(s[i:]):
        return len(s), lit[len(s) - i:]
    raise SchemaError(f"expected {lit!r} at byte {i} of {s!r}")


def _lark_literal(b: bytes) -> str:
    return json.dumps(b.decode())


def _string_end(s: bytes, i: int) -> int | None:
    """Index after the JSON string that opens at s[i] (a quote), or None when s ends inside it."""
    j = i + 1
    while j < len(s):
        if s[j] == 0x5C:  # backslash: the next byte is escaped
            j += 2
            continue
        if s[j] == 0x22:
            return j + 1
        j += 1
    return None


class Node:
    """One element of an answer schema: its Lark rule, a shortest instance, and a partial-prefix walker."""

    def lark(self, g: "_Lark") -> str:
        raise NotImplementedError

    def minimal(self) -> bytes:
        raise NotImplementedError

    def walk(self, s: bytes, i: int) -> tuple[int, bytes | None]:
        """Read this node from s[i:]: (end, None) when it is complete, (len(s), its shortest ending) when s
        ends inside it (s ending exactly at i: the node's shortest instance)."""
        raise NotImplementedError

    def bound(self) -> int:
        """Longest ending `walk` can return for this node (bytes)."""
        raise NotImplementedError


class Mention(Node):
    """A non-empty substring of the input text, as a JSON string."""

    def __init__(self, text: str):
        chunks = [json.dumps(c, ensure_ascii=False)[1:-1].encode() for c in text] or [b" "]
        self.chunks = chunks
        self.escaped = b"".join(chunks)
        self.starts = [0]
        for c in chunks:
            self.starts.append(self.starts[-1] + len(c))  # chunk boundaries, the end included
        self._boundary = set(self.starts)
        self.shortest = min(chunks, key=len)

    def lark(self, g):
        if "MENTION" not in g.rules:
            chunks = json.dumps({"substring_chunks": [c.decode() for c in self.chunks]}, ensure_ascii=False)
            g.rules["SUBSTRING"] = f"(%regex {chunks}) & /(?s:.+)/"
            g.rules["MENTION"] = '"\\"" SUBSTRING "\\""'
        return "MENTION"

    def minimal(self):
        return b'"' + self.shortest + b'"'

    def walk(self, s, i):
        j, missing = _lit(s, i, b'"')
        if missing is not None:
            return j, missing + self.shortest + b'"'
        end = _string_end(s, i)
        if end is not None:
            return end, None
        return len(s), self._finish(s[i + 1:]) + b'"'

    def _finish(self, content: bytes) -> bytes:
        """Bytes completing `content` (a prefix of a substring) to the next chunk boundary."""
        if not content:
            return self.shortest
        p = self.escaped.find(content)
        while p >= 0:
            if p in self._boundary:
                end = p + len(content)
                return self.escaped[end:self.starts[bisect.bisect_left(self.starts, end)]]
            p = self.escaped.find(content, p + 1)
        raise SchemaError(f"{content!r} is not a substring of the input")

    def bound(self):
        return max(len(self.shortest) + 2, max(len(c) for c in self.chunks))


class Label(Node):
    """One of a fixed set of strings (entity types, relation labels)."""

    def __init__(self, choices):
        self.literals = [json.dumps(c, ensure_ascii=False).encode() for c in choices]

    def lark(self, g):
        return g.terminal(" | ".join(_lark_literal(x) for x in self.literals))

    def minimal(self):
        return min(self.literals, key=len)

    def walk(self, s, i):
        if i == len(s):
            return i, self.minimal()
        for lit in self.literals:
            if s.startswith(lit, i) or lit.startswith(s[i:]):
                return _lit(s, i, lit)
        raise SchemaError(f"no label at byte {i} of {s!r}")

    def bound(self):
        return max(len(x) for x in self.literals)


class Free(Node):
    """Any JSON string (qa answers)."""

    def lark(self, g):
        return g.terminal(FREE_STRING)

    def minimal(self):
        return b'""'

    def walk(self, s, i):
        j, missing = _lit(s, i, b'"')
        if missing is not None:
            return j, missing + b'"'
        end = _string_end(s, i)
        return (end, None) if end is not None else (len(s), _finish_free(s[i + 1:]) + b'"')

    def bound(self):
        return 5  # the rest of a \\uXXXX escape, then the quote


def _finish_free(content: bytes) -> bytes:
    """Bytes that end an open escape or UTF-8 character at the end of a JSON string's content."""
    j, n = 0, len(content)
    while j < n:
        b = content[j]
        if b == 0x5C:
            if j + 1 >= n:
                return b"n"
            if content[j + 1] == 0x75:  # \\uXXXX
                have = n - (j + 2)
                if have < 4:
                    return b"0" * (4 - have)
                j += 6
                continue
            j += 2
        elif b >= 0xC0:
            size = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            have = n - j
            if have < size:  # E0 and F0 need a higher second byte to avoid overlong forms
                second = {0xE0: b"\xa0", 0xF0: b"\x90"}.get(b, b"\x80") if have == 1 else b""
                return second + b"\x80" * (size - have - len(second))
            j += size
        else:
            j += 1
    return b""


class Array(Node):
    """[item, item, ...] with ", " between items; at least `min_items`."""

    def __init__(self, item: Node, min_items: int = 0):
        self.item, self.min_items = item, min_items

    def lark(self, g):
        item = self.item.lark(g)
        items = f"{item} (\", \" {item})*"
        return g.rule(f'"[" {items} "]"' if self.min_items else f'"[" ({items})? "]"')

    def _rest(self, count: int) -> bytes:
        return b"]" if count >= self.min_items else self.item.minimal() + b"]"

    def minimal(self):
        return b"[" + self._rest(0)

    def walk(self, s, i):
        j, missing = _lit(s, i, b"[")
        if missing is not None:
            return j, missing + self._rest(0)
        count = 0
        while True:
            if j == len(s):
                return j, self._rest(count)
            if s[j] == 0x5D and count >= self.min_items:
                return j + 1, None
            if count:
                j, missing = _lit(s, j, b", ")
                if missing is not None:
                    return j, missing + self.item.minimal() + b"]"
            j, missing = self.item.walk(s, j)
            if missing is not None:
                return j, missing + b"]"
            count += 1

    def bound(self):
        return max(len(self.minimal()), 2 + len(self.item.minimal()) + 1, self.item.bound() + 1)


class Tuple(Node):
    """[a, b, c]: a fixed sequence (a relation triple)."""

    def __init__(self, items: list[Node]):
        self.items = items

    def lark(self, g):
        return g.rule('"[" ' + ' ", " '.join(x.lark(g) for x in self.items) + ' "]"')

    def _rest(self, k: int) -> bytes:
        return b"".join(b", " + x.minimal() for x in self.items[k:]) + b"]"

    def minimal(self):
        return b"[" + self.items[0].minimal() + self._rest(1)

    def walk(self, s, i):
        j, missing = _lit(s, i, b"[")
        if missing is not None:
            return j, missing + self.items[0].minimal() + self._rest(1)
        for k, item in enumerate(self.items):
            if k:
                j, missing = _lit(s, j, b", ")
                if missing is not None:
                    return j, missing + item.minimal() + self._rest(k + 1)
            j, missing = item.walk(s, j)
            if missing is not None:
                return j, missing + self._rest(k + 1)
        j, missing = _lit(s, j, b"]")
        return j, missing

    def bound(self):
        return max([len(self.minimal())] + [max(x.bound(), 2 + len(x.minimal())) + len(self._rest(k + 1))
                                            for k, x in enumerate(self.items)])


class Object(Node):
    """{"key": value, ...} with the fields in a fixed order; optional fields may be left out."""

    def __init__(self, fields: list[tuple[str, Node, bool]]):
        self.fields = [(json.dumps(k, ensure_ascii=False).encode() + b": ", node, required)
                       for k, node, required in fields]

    def lark(self, g):
        # seq(k, first): the fields from k on; `first`: no field written yet (no ", " before the next)
        n = len(self.fields)
        names = {(k, first): g.name() for k in range(n) for first in (True, False)}

        def seq(k, first):
            return "" if k == n else names[k, first]

        for k in range(n - 1, -1, -1):
            head, node, required = self.fields[k]
            value = node.lark(g)
            for first in (True, False):
                pair = ("" if first else '", " ') + f"{_lark_literal(head)} {value} {seq(k + 1, False)}"
                skip = seq(k + 1, first)
                g.rules[names[k, first]] = pair if required else (f"({pair}) | {skip}" if skip else f"({pair})?")
        return g.rule(f'"{{" {seq(0, True)} "}}"')

    def _rest(self, k: int, first: bool) -> bytes:
        out = b""
        for head, node, required in self.fields[k:]:
            if required:
                out += (b"" if first else b", ") + head + node.minimal()
                first = False
        return out + b"}"

    def minimal(self):
        return b"{" + self._rest(0, True)

    def walk(self, s, i):
        j, missing = _lit(s, i, b"{")
        if missing is not None:
            return j, missing + self._rest(0, True)
        k, first = 0, True
        while True:
            if j == len(s):
                return j, self._rest(k, first)
            if s[j] == 0x7D:
                return j + 1, None
            j, k, missing = self._field(s, j, k, first)
            if missing is not None:
                return j, missing
            first = False

    def _field(self, s, j, k, first):
        """Read the next field at s[j:] (fields k.. may follow): (end, next k, ending when s ends inside)."""
        for f in range(k, len(self.fields)):
            head, node, required = self.fields[f]
            head = (b"" if first else b", ") + head
            if s.startswith(head, j):
                end, missing = node.walk(s, j + len(head))
                return end, f + 1, (None if missing is None else missing + self._rest(f + 1, False))
            if head.startswith(s[j:]):
                return len(s), f + 1, head[len(s) - j:] + node.minimal() + self._rest(f + 1, False)
            if required:
                break
        raise SchemaError(f"no field of {[h for h, _, _ in self.fields]} at byte {j} of {s!r}")

    def bound(self):
        inner = [max(2 + len(head) + len(node.minimal()), node.bound()) + len(self._rest(f + 1, False))
                 for f, (head, node, _) in enumerate(self.fields)]
        return max([len(self.minimal()), len(self._rest(0, False))] + inner)


@dataclass
class Answer:
    """The whole completion: optional <think> block, the JSON answer, optional confidence line."""

    body: Node
    think: bool = False
    confidence: bool = False
    compiled: tuple | None = field(default=None, repr=False, compare=False)  # (llguidance grammar, bound)

    def lark(self) -> str:
        g = _Lark()
        body = self.body.lark(g)
        start = body
        if self.think:
            g.rules["think[lazy]"] = r"/<think>(?s:.*)<\/think>/"
            start = f'(think "\\n"?)? {start}'
        if self.confidence:
            g.rules["CONFIDENCE"] = "/" + CONFIDENCE_HEAD.decode().replace("\n", "\\n") + "(100|[1-9]?[0-9])%/"
            start += " CONFIDENCE?"
        return "%llguidance {}\nstart: " + start + "\n" + "\n".join(f"{k}: {v}" for k, v in g.rules.items())

    def closing(self, s: bytes) -> bytes:
        """A shortest valid ending of the prefix `s` (b"" when `s` is already a complete answer)."""
        i = 0
        if self.think and s and (s.startswith(THINK_OPEN) or THINK_OPEN.startswith(s)):
            if not s.startswith(THINK_OPEN):
                return THINK_OPEN[len(s):] + THINK_CLOSE + self.body.minimal()
            end = s.find(THINK_CLOSE, len(THINK_OPEN))
            if end < 0:
                tail = next(k for k in range(len(THINK_CLOSE) - 1, -1, -1) if s.endswith(THINK_CLOSE[:k]))
                return THINK_CLOSE[tail:] + self.body.minimal()
            i = end + len(THINK_CLOSE) + s.startswith(b"\n", end + len(THINK_CLOSE))
        j, missing = self.body.walk(s, i)
        if missing is not None:
            return missing
        return self._confidence_ending(s[j:])

    def _confidence_ending(self, line: bytes) -> bytes:
        if not line:
            return b""
        if not self.confidence:
            raise SchemaError(f"text after the answer: {line!r}")
        if CONFIDENCE_HEAD.startswith(line):
            return CONFIDENCE_HEAD[len(line):] + b"0%"
        if line.startswith(CONFIDENCE_HEAD):
            return b"" if line.endswith(b"%") else (b"0%" if line == CONFIDENCE_HEAD else b"%")
        raise SchemaError(f"text after the answer: {line!r}")

    def bound(self) -> int:
        """Longest ending `closing` can return, plus one token for end-of-turn."""
        parts = [self.body.bound(), len(self.body.minimal())]
        if self.think:
            parts.append(len(THINK_OPEN) + len(THINK_CLOSE) + len(self.body.minimal()))
        if self.confidence:
            parts.append(len(CONFIDENCE_HEAD) + 2)
        return max(parts) + 1


class _Lark:
    """Collects the named rules and terminals of one grammar."""

    def __init__(self):
        self.rules: dict[str, str] = {}
        self._terminals: dict[str, str] = {}
        self._count = 0

    def name(self) -> str:
        self._count += 1
        return f"r{self._count}"

    def rule(self, body: str) -> str:
        name = self.name()
        self.rules[name] = body
        return name

    def terminal(self, body: str) -> str:
        if body not in self._terminals:
            self._count += 1
            self._terminals[body] = f"T{self._count}"
            self.rules[self._terminals[body]] = body
        return self._terminals[body]


def answer_schema(spec: TaskSpec, text: str, levels=()) -> Answer:
    """The answer a prompt of this task asks for (its family's grammar), mentions restricted to substrings
    of `text`."""
    nodes = SimpleNamespace(mention=Mention(text), Label=Label, Free=Free, Array=Array, Tuple=Tuple, Object=Object)
    body = family_of(spec).grammar(spec, nodes)
    return Answer(body, think="reasoning" in levels, confidence="confidence" in levels)


def grounded_answers(rows: list[dict], levels) -> list[Answer]:
    """The answer schema of each data row (its task and input text) for grounded decoding."""
    return [answer_schema(get_task(r["dataset"]), r["text"], levels) for r in rows]


# ---------------------------------------------------------------- token masks (llguidance)


@dataclass
class Row:
    """One sequence under its answer schema: the llguidance matcher, the bytes written so far."""

    answer: Answer
    matcher: object
    bound: int
    prefix: bytearray
    done: bool = False


_TOKENIZERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class Grounding:
    """Token masks for rows of one tokenizer: grammar masks from llguidance, then the token budget.

    `stop_ids` are the end-of-turn tokens: allowed (all of them) exactly where the answer is complete,
    whatever their text (a test model may use an ordinary token as a second stop id).
    """

    def __init__(self, tokenizer, stop_ids: list[int]):
        import llguidance  # noqa: F401  (fails here, clearly, where it is not installed)
        import llguidance.hf

        if not stop_ids:
            raise ValueError("grounded decoding needs an end-of-turn token id (none in the model's generation_config "
                             "or the tokenizer)")
        self.stop_ids = list(stop_ids)
        key = (tuple(self.stop_ids),)
        cached = _TOKENIZERS.get(tokenizer, {})
        if key not in cached:  # building llguidance's token trie takes about a second: once per tokenizer
            lltok = llguidance.hf.from_tokenizer(tokenizer, eos_token=self.stop_ids[0])
            cached[key] = (lltok, [lltok.decode_bytes([t]) for t in range(lltok.vocab_size)])
            _TOKENIZERS[tokenizer] = cached
        self.lltok, self.token_bytes = cached[key]
        self.n_vocab = self.lltok.vocab_size
        self._executor = llguidance.LLExecutor()
        self.retries = 4  # choices tried near the token limit before the shortest ending is taken

    def start(self, answer: Answer) -> Row:
        """A fresh row (one per sample) for a prompt whose answer follows `answer`."""
        import llguidance

        if answer.compiled is None:  # once per prompt, shared by its samples
            answer.compiled = (llguidance.LLMatcher.grammar_from_lark(answer.lark()), answer.bound())
        grammar, bound = answer.compiled
        matcher = llguidance.LLMatcher(self.lltok, grammar, log_level=0)
        if matcher.is_error():
            raise ValueError(f"answer grammar rejected by llguidance: {matcher.get_error()}")
        return Row(answer, matcher, bound, bytearray())

    def masks(self, rows: list[Row], remaining: int, width: int) -> torch.Tensor:
        """Allowed next tokens, bool [len(rows), width] on the CPU; `remaining`: tokens left including this one."""
        import numpy as np

        words = (self.n_vocab + 31) // 32
        bits = np.zeros((len(rows), words), dtype=np.int32)
        self._executor.unsafe_compute_mask_ptr([(r.matcher, k) for k, r in enumerate(rows)], bits.ctypes.data,
                                               words * 4, len(rows))
        unpacked = np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, :min(self.n_vocab, width)]
        allowed = torch.zeros((len(rows), width), dtype=torch.bool)
        allowed[:, :unpacked.shape[1]] = torch.from_numpy(unpacked.astype(bool))
        complete = allowed[:, self.stop_ids[0]].clone()
        allowed[:, self.stop_ids] = complete[:, None]
        for k, row in enumerate(rows):
            ending = row.answer.closing(bytes(row.prefix)) if remaining <= row.bound else None
            if ending is not None and len(ending) + 1 >= remaining:  # no slack left: write the shortest ending
                token = self._ending_token(ending, allowed[k])
                allowed[k] = False
                allowed[k, token] = True
        return allowed

    def fits(self, row: Row, token: int, remaining: int) -> bool:
        """Whether a shortest ending still fits after `token` (one token per byte at worst, plus end-of-turn),
        with `remaining` tokens left including `token`."""
        if remaining > row.bound or token in self.stop_ids:
            return True  # far from the limit every ending fits (`bound` is the longest there is)
        try:
            return len(row.answer.closing(bytes(row.prefix) + self.token_bytes[token])) + 2 <= remaining
        except SchemaError:
            return False

    def settle(self, rows: list[Row], logits: torch.Tensor, chosen: torch.Tensor, remaining: int, pick) -> None:
        """Near the token limit, replace each chosen token after which the answer could not be closed in
        time by the next choice of `pick` (in place; `logits` are the masked ones, `pick(logits[k:k+1])`
        picks for one row): greedy takes the best token that fits; after `retries` misses (free text near
        the limit, where most tokens do not fit) the shortest ending's next token."""
        for k, row in enumerate(rows):
            if remaining > row.bound:
                continue
            ending = row.answer.closing(bytes(row.prefix))
            if len(ending) + 1 >= remaining:
                continue  # the mask held only the ending's next token
            allowed, t = logits[k] > float("-inf"), int(chosen[k])
            for _ in range(self.retries):
                if self.fits(row, t, remaining):
                    break
                logits[k, t] = float("-inf")
                t = int(pick(logits[k:k + 1])[0])
            else:
                if not self.fits(row, t, remaining):
                    t = self._ending_token(ending, allowed)
            chosen[k] = t

    def _ending_token(self, ending: bytes, allowed: torch.Tensor) -> int:
        """The longest allowed token that starts `ending` (end-of-turn when nothing is left to write)."""
        if not ending:
            return self.stop_ids[0]
        best = max((t for t in allowed.nonzero().squeeze(1).tolist()
                    if self.token_bytes[t] and ending.startswith(self.token_bytes[t])),
                   key=lambda t: (len(self.token_bytes[t]), -t), default=None)
        if best is None:
            raise SchemaError(f"no allowed token starts the ending {ending!r}")
        return best

    def advance(self, rows: list[Row], tokens: list[int]) -> None:
        """Feed each row its chosen token (a stop token finishes the row)."""
        for row, t in zip(rows, tokens):
            if row.done:
                continue
            if t in self.stop_ids:
                row.done = True
                continue
            if not row.matcher.consume_token(t):
                raise RuntimeError(f"token {t} outside the answer grammar: {row.matcher.get_error()}")
            row.prefix += self.token_bytes[t]


class GroundedBatch:
    """Grounded decoding of one batch: a row per (prompt, sample), asked once per step, by the fast engine's
    decode loop (`pick`) and by model.generate's logits processor (`feed`, then `restrict`). Rows that emitted
    an end-of-turn token are done; both callers pass logits for the rows still decoding (`live`), in order."""

    def __init__(self, grounding: Grounding, answers: list[Answer], *, max_new_tokens: int):
        self.grounding, self.max_new_tokens = grounding, max_new_tokens
        self.rows = [grounding.start(a) for a in answers]

    def live(self) -> list[int]:
        return [k for k, row in enumerate(self.rows) if not row.done]

    def _masked(self, rows: list[Row], logits: torch.Tensor, remaining: int) -> torch.Tensor:
        allowed = self.grounding.masks(rows, remaining, logits.shape[-1]).to(logits.device)
        return logits.float().masked_fill(~allowed, float("-inf"))

    def pick(self, logits: torch.Tensor, *, step: int, pick) -> torch.Tensor:
        """Next tokens of the live rows: the schema's mask, `pick` (the sampling rule, one row or many), then
        the token budget; the chosen tokens are fed back at once."""
        rows, remaining = [self.rows[k] for k in self.live()], self.max_new_tokens - step
        masked = self._masked(rows, logits, remaining)
        chosen = pick(masked)
        self.grounding.settle(rows, masked, chosen, remaining, pick)
        self.grounding.advance(rows, chosen.tolist())
        return chosen

    def feed(self, tokens: list[int]) -> None:
        """The tokens model.generate chose at the last step, one per row (done rows ignore theirs)."""
        self.grounding.advance(self.rows, tokens)

    def restrict(self, scores: torch.Tensor, *, step: int, sample: bool) -> torch.Tensor:
        """`scores` (every row) with the live rows' disallowed tokens at -inf. Greedy: the engine's choice as
        the only finite score. Sampling: near the token limit every allowed token is checked against the budget
        up front (slow, but model.generate picks after this)."""
        live = self.live()
        if not live:
            return scores
        rows, remaining = [self.rows[k] for k in live], self.max_new_tokens - step
        masked = self._masked(rows, scores[live], remaining)
        if sample:
            for k, row in enumerate(rows):
                for t in masked[k].isfinite().nonzero().squeeze(1).tolist():
                    if not self.grounding.fits(row, t, remaining):
                        masked[k, t] = float("-inf")
        else:
            chosen = masked.argmax(-1)
            self.grounding.settle(rows, masked, chosen, remaining, lambda one: one.argmax(-1))
            masked = torch.full_like(masked, float("-inf")).scatter_(1, chosen[:, None], 0.0)
        scores = scores.clone()
        scores[live] = masked
        return scores
