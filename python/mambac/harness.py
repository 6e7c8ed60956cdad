"""An lm-evaluation-harness model backend: `mambac-lm-eval --model mambac --model_args path=...`.

The harness finds models in its registry; an external package registers on import
(`@register_model`), and the harness's CLI imports only its own models. So `mambac-lm-eval`
(or `python -m mambac.harness`) imports this module and then runs the harness's own CLI with
the same arguments; from Python, `import mambac.harness` before `lm_eval.simple_evaluate(
model="mambac", ...)`. Scores are computed as `mambac eval` computes them (the same library
calls): loglikelihood through mambac_loglikelihood_batch (each context evaluated once, its
continuations from copies of its state), loglikelihood_rolling in lm-eval's disjoint windows
of max_length tokens (0: each document whole through the state), generate_until through
mambac_generate.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
from lm_eval import utils as lm_utils
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from .errors import MambacIOError, MambacUnsupportedError
from .model import Model

eval_logger = logging.getLogger("mambac.harness")

_PIECE = 256  # tokens scored at once (their logits: piece x vocabulary floats)


@register_model("mambac")
class MambacLM(LM):
    """model_args: path (or pretrained), threads, backend ("cpu", "cuda", "cuda:N"), precision,
    batch_size (requests scored together), max_length (rolling window; 0 = whole documents),
    max_gen_toks."""

    def __init__(self, path: str | None = None, pretrained: str | None = None, threads: int = 0,
                 backend: str | None = None, device: str | None = None, precision: str | None = None,
                 batch_size: int | str = 16, max_length: int = 2048, max_gen_toks: int = 256, **kwargs):
        super().__init__()
        path = path or pretrained
        if backend:  # model_args' backend=cpu|cuda|cuda:N: the user's choice, used as given
            self.model = Model(path, threads=int(threads), device=str(backend), precision=precision)
        elif device and str(device).startswith("cuda"):
            # the harness passes its --device, which defaults to cuda:0 on every machine: try
            # the GPU, and run on the CPU where there is none (or no CUDA build)
            try:
                self.model = Model(path, threads=int(threads), device=str(device), precision=precision)
            except (MambacIOError, MambacUnsupportedError) as e:
                eval_logger.warning("mambac: %s; running on the CPU (model_args backend=cuda insists)", e)
                self.model = Model(path, threads=int(threads), device="cpu")
        else:
            self.model = Model(path, threads=int(threads), device="cpu")
        self._device = self.model.info.backend
        if self.model.tokenizer is None:
            raise ValueError(f"{self.model.path} has no tokenizer: lm-eval scores text")
        bs = str(batch_size)
        self.batch_size = int(bs) if bs.isdigit() else 16  # "auto" has nothing to probe on a CPU
        self.max_length = int(max_length)
        self.max_gen_toks = int(max_gen_toks)
        eos = self.model.info.eos_token_id
        self._eot = eos if eos is not None else self.model.tokenizer.find("<|endoftext|>")

    @property
    def eot_token_id(self) -> int:
        return self._eot

    @property
    def tokenizer_name(self) -> str:
        return self.model.info.dir

    # ---- loglikelihood ------------------------------------------------------------------

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        # one request per distinct context, its continuations together
        groups: "OrderedDict[str, list[tuple[int, str]]]" = OrderedDict()
        for i, r in enumerate(requests):
            ctx, cont = r.args
            groups.setdefault(ctx, []).append((i, cont))
        out: list = [None] * len(requests)
        items = list(groups.items())
        bar = tqdm(total=len(requests), disable=disable_tqdm, desc="mambac loglikelihood")
        for k in range(0, len(items), self.batch_size):
            chunk = items[k:k + self.batch_size]
            res = self.model.loglikelihood_batch([(ctx, [c for _, c in conts]) for ctx, conts in chunk])
            for (ctx, conts), scores in zip(chunk, res):
                for (i, cont), (lp, greedy) in zip(conts, scores):
                    out[i] = (lp, greedy)
                    self.cache_hook.add_partial("loglikelihood", (ctx, cont), (lp, greedy))
                bar.update(len(conts))
        bar.close()
        return out

    def _score_window(self, context: list[int], pred: list[int]) -> float:
        """Sum of log p(pred | context) from a fresh state, in pieces of _PIECE tokens."""
        V = self.model.info.vocab_size
        inp = np.asarray(context + pred[:-1], dtype=np.int32)
        targets = np.asarray(pred, dtype=np.int64)
        first = len(context) - 1  # the position whose logits predict pred[0]
        state = self.model.state()
        total = 0.0
        for s in range(0, len(inp), _PIECE):
            piece = inp[s:s + _PIECE]
            logits = self.model.logits(piece, state=state)[:, :V].astype(np.float64)
            lo, hi = max(s, first), s + len(piece)
            if hi <= lo:
                continue
            rows = logits[lo - s:hi - s]
            m = rows.max(axis=1, keepdims=True)
            lse = (m[:, 0] + np.log(np.exp(rows - m).sum(axis=1)))
            t = targets[lo - first:hi - first]
            total += float((rows[np.arange(len(t)), t] - lse).sum())
        return total

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        out = []
        for r in tqdm(requests, disable=disable_tqdm, desc="mambac loglikelihood_rolling"):
            (text,) = r.args
            ids = self.model.tokenizer.encode(text)
            if self.max_length > 0:
                windows = map(lm_utils.make_disjoint_window,
                              lm_utils.get_rolling_token_windows(token_list=ids, prefix_token=self._eot,
                                                                 max_seq_len=self.max_length, context_len=1))
            else:
                windows = [([self._eot], ids)] if ids else []
            ll = sum(self._score_window(list(c), list(p)) for c, p in windows)
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), ll)
            out.append(ll)
        return out

    # ---- generation ---------------------------------------------------------------------

    def generate_until(self, requests, disable_tqdm: bool = False):
        out = []
        for r in tqdm(requests, disable=disable_tqdm, desc="mambac generate_until"):
            ctx, kw = r.args
            kw = dict(kw or {})
            until = kw.pop("until", None) or []
            if isinstance(until, str):
                until = [until]
            max_toks = int(kw.pop("max_gen_toks", self.max_gen_toks))
            do_sample = bool(kw.pop("do_sample", False))
            temp = float(kw.pop("temperature", 0.0))
            if not do_sample:
                temp = 0.0
            text = self.model.generate(ctx, max_tokens=max_toks, temperature=temp, top_p=kw.pop("top_p", None),
                                       top_k=kw.pop("top_k", None), stop=[u for u in until if u],
                                       seed=int(kw.pop("seed", 1234)))
            self.cache_hook.add_partial("generate_until", (ctx, {"until": until}), text)
            out.append(text)
        return out


def main() -> None:
    """`mambac-lm-eval ARGS`: lm-eval's own command line, with the mambac model registered."""
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
