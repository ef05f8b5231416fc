"""sembed from Python: text embeddings through libsembed.so (ctypes, no compiled extension).

    import sembed
    with sembed.Model("~/.cache/sembed/models/all-MiniLM-L6-v2") as m:
        v = m.encode(["Hello, world!", "Another text"])   # numpy float32 (2, 384), or lists
        print(m.dim, m.max_length, m.device, m.tokenize("Hello, world!"))

The library is found through the `lib` argument (a path to libsembed.so), then $SEMBED_LIB,
then libsembed.so next to this file, then the system's library path. The structures below
mirror include/sembed.h; every call that fails raises SembedError with the library's status
and message (which names the file, field or text involved).
"""
import ctypes
import ctypes.util
import os

try:
    import numpy as _np
except ImportError:  # vectors come back as lists of floats then
    _np = None

__all__ = ["Model", "SembedError", "load_library", "STATUS"]

STATUS = {0: "OK", -1: "INVALID_ARG", -2: "IO", -3: "FORMAT", -4: "UNSUPPORTED", -5: "NOMEM",
          -6: "INPUT", -7: "TOO_SMALL", -8: "TOO_LONG", -9: "BACKEND"}
PRECISIONS = {"fp32": 0, "int8": 1, "bf16": 2, "fp32-strict": 3}
POOLINGS = {None: 0, "cls": 1, "mean": 2, "max": 3, "last": 4}


class SembedError(Exception):
    """A failed sembed call: .status is the library's code (-1 ...), .name its name ("IO", ...)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.name = STATUS.get(status, str(status))


class _Error(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 512)]


class _ModelParams(ctypes.Structure):
    _fields_ = [("max_length", ctypes.c_int32), ("pooling", ctypes.c_int), ("normalize", ctypes.c_int32)]


class _CtxParams(ctypes.Structure):
    _fields_ = [("n_threads", ctypes.c_int32), ("max_batch_tokens", ctypes.c_int32),
                ("max_batch_texts", ctypes.c_int32), ("strict_length", ctypes.c_int32),
                ("reference_ops", ctypes.c_int32), ("device", ctypes.c_char_p),
                ("precision", ctypes.c_int)]


class _EncodeOpts(ctypes.Structure):
    _fields_ = [("prompt_name", ctypes.c_char_p), ("prompt", ctypes.c_char_p),
                ("dimensions", ctypes.c_int32)]


class _EncodeInfo(ctypes.Structure):
    _fields_ = [("n_tokens", ctypes.c_int32), ("truncated", ctypes.c_int32)]


class _Tokens(ctypes.Structure):
    _fields_ = [("ids", ctypes.POINTER(ctypes.c_int32)), ("offsets", ctypes.POINTER(ctypes.c_int32)),
                ("special", ctypes.POINTER(ctypes.c_uint8)), ("capacity", ctypes.c_int32),
                ("n", ctypes.c_int32), ("n_full", ctypes.c_int32), ("truncated", ctypes.c_int32)]


_P = ctypes.c_void_p
_SIGNATURES = {
    "sembed_version": (ctypes.c_char_p, []),
    "sembed_model_default_params": (_ModelParams, []),
    "sembed_model_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_ModelParams), ctypes.POINTER(_P),
                                         ctypes.POINTER(_Error)]),
    "sembed_model_free": (None, [_P]),
    "sembed_model_dim": (ctypes.c_int32, [_P]),
    "sembed_model_max_length": (ctypes.c_int32, [_P]),
    "sembed_model_tokenizer": (_P, [_P]),
    "sembed_ctx_default_params": (_CtxParams, []),
    "sembed_ctx_new": (ctypes.c_int, [_P, ctypes.POINTER(_CtxParams), ctypes.POINTER(_P), ctypes.POINTER(_Error)]),
    "sembed_ctx_free": (None, [_P]),
    "sembed_ctx_device": (ctypes.c_char_p, [_P]),
    "sembed_encode_ex": (ctypes.c_int, [_P, ctypes.c_int32, ctypes.POINTER(ctypes.c_char_p),
                                        ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(_EncodeOpts),
                                        ctypes.POINTER(ctypes.c_float), ctypes.c_int64,
                                        ctypes.POINTER(_EncodeInfo), ctypes.POINTER(_Error)]),
    "sembed_tokenizer_max_length": (ctypes.c_int32, [_P]),
    "sembed_tokenize": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_Tokens),
                                       ctypes.POINTER(_Error)]),
}


_handles = {}  # path -> typed handle: each library is opened and typed once per process


# newer functions, used where the library has them
_OPTIONAL = {
    "sembed_device_warm_start": (_P, [ctypes.POINTER(_CtxParams)]),
    "sembed_device_warm_wait": (None, [_P]),
}


def load_library(lib=None):
    """The ctypes handle of libsembed.so, with every function used here typed."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libsembed.so")
    for cand in (lib, os.environ.get("SEMBED_LIB"), here if os.path.exists(here) else None,
                 ctypes.util.find_library("sembed")):
        if cand:
            break
    else:
        raise OSError("libsembed.so not found: set SEMBED_LIB to its path, or install sembed "
                      "(cmake --install BUILD)")
    if cand not in _handles:
        h = ctypes.CDLL(cand)
        for name, (res, args) in _SIGNATURES.items():
            f = getattr(h, name)
            f.restype, f.argtypes = res, args
        for name, (res, args) in _OPTIONAL.items():  # absent from older libraries
            if hasattr(h, name):
                f = getattr(h, name)
                f.restype, f.argtypes = res, args
        _handles[cand] = h
    return _handles[cand]


def _check(status, err):
    if status != 0:
        raise SembedError(status, err.msg.decode("utf-8", "replace"))


class Model:
    """A model folder loaded with one encoding context.

    path: a sentence-transformers (or Hugging Face) folder. device: "cpu", "cuda", "cuda:N" or
    "auto". threads: 0 for one per core. precision: "fp32", "int8", "bf16" or "fp32-strict".
    max_length: tokens per text (0: the folder's). strict: a longer text is an error instead of
    being truncated. max_batch_tokens / max_batch_texts: the context's forward-pass size (0: the
    library's defaults: 4096 tokens and 256 texts on the CPU, 32768 and 1024 on a GPU). One thread
    at a time per Model (make one per thread)."""

    def __init__(self, path, device="cpu", threads=0, precision="fp32", max_length=0, strict=False,
                 pooling=None, normalize=False, max_batch_tokens=0, max_batch_texts=0, lib=None):
        self._lib = load_library(lib)
        if precision not in PRECISIONS:
            raise SembedError(-1, "precision %r: expected one of %s" % (precision, ", ".join(PRECISIONS)))
        if pooling not in POOLINGS:
            raise SembedError(-1, "pooling %r: expected cls, mean, max, last or None" % (pooling,))
        self._model = _P()
        self._ctx = _P()
        err = _Error()
        mp = self._lib.sembed_model_default_params()
        mp.max_length, mp.pooling, mp.normalize = max_length, POOLINGS[pooling], int(bool(normalize))
        cp = self._lib.sembed_ctx_default_params()
        self._device = device.encode()  # kept alive: the context reads it at creation only
        cp.n_threads, cp.device, cp.precision = threads, self._device, PRECISIONS[precision]
        cp.strict_length = int(bool(strict))
        cp.max_batch_tokens, cp.max_batch_texts = max_batch_tokens, max_batch_texts
        # a GPU's driver and device come up while the model loads (sembed_device_warm_start)
        warm = None
        if hasattr(self._lib, "sembed_device_warm_start"):
            warm = self._lib.sembed_device_warm_start(ctypes.byref(cp))
        try:
            status = self._lib.sembed_model_load(os.path.expanduser(path).encode(), ctypes.byref(mp),
                                                 ctypes.byref(self._model), ctypes.byref(err))
        finally:
            if warm:
                self._lib.sembed_device_warm_wait(warm)
        _check(status, err)
        status = self._lib.sembed_ctx_new(self._model, ctypes.byref(cp), ctypes.byref(self._ctx),
                                          ctypes.byref(err))
        if status != 0:
            self.close()
            _check(status, err)
        self.dim = self._lib.sembed_model_dim(self._model)
        # where it runs: "cpu" or "cuda:N" (what "auto" chose)
        self.device = self._lib.sembed_ctx_device(self._ctx).decode()
        self.max_length = self._lib.sembed_model_max_length(self._model)

    def encode(self, texts, prompt_name=None, prompt=None, dimensions=0, numpy=None, info=False):
        """Vectors of texts (a list of str, or one str for one vector): float32, one row per
        text, normalized when the model normalizes. numpy: True for an ndarray, False for
        lists, None for an ndarray when numpy is installed. info=True also returns
        [(n_tokens, truncated), ...]."""
        if self._ctx is None:
            raise SembedError(-1, "encode on a closed Model")
        one = isinstance(texts, str)
        raw = [t.encode("utf-8", "surrogatepass") for t in ([texts] if one else texts)]
        n = len(raw)
        dim = dimensions or self.dim
        arr = (ctypes.c_char_p * max(n, 1))(*raw)
        lens = (ctypes.c_size_t * max(n, 1))(*[len(r) for r in raw])
        opts = _EncodeOpts(prompt_name.encode() if prompt_name is not None else None,
                           prompt.encode() if prompt is not None else None, dimensions)
        use_np = (_np is not None) if numpy is None else numpy
        if use_np:
            out = _np.empty((n, dim), dtype=_np.float32)
            ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        else:
            buf = (ctypes.c_float * max(n * dim, 1))()
            ptr = buf
        inf = (_EncodeInfo * max(n, 1))()
        err = _Error()
        if n:
            _check(self._lib.sembed_encode_ex(self._ctx, n, arr, lens, ctypes.byref(opts), ptr,
                                              n * dim, inf, ctypes.byref(err)), err)
        if not use_np:
            out = [list(buf[i * dim:(i + 1) * dim]) for i in range(n)]
        res = out[0] if one else out
        if info:
            meta = [(inf[i].n_tokens, bool(inf[i].truncated)) for i in range(n)]
            return res, (meta[0] if one else meta)
        return res

    def tokenize(self, text):
        """The token ids the model sees for text (special tokens included, truncated to
        max_length)."""
        if self._model is None:
            raise SembedError(-1, "tokenize on a closed Model")
        tok = self._lib.sembed_model_tokenizer(self._model)
        cap = self._lib.sembed_tokenizer_max_length(tok)
        ids = (ctypes.c_int32 * cap)()
        t = _Tokens(ids, None, None, cap, 0, 0, 0)
        raw = text.encode("utf-8", "surrogatepass")
        err = _Error()
        _check(self._lib.sembed_tokenize(tok, raw, len(raw), ctypes.byref(t), ctypes.byref(err)), err)
        return list(ids[:t.n])

    def close(self):
        """Frees the context and the model (also done by `with` and at garbage collection)."""
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        if getattr(self, "_ctx", None):
            lib.sembed_ctx_free(self._ctx)
        if getattr(self, "_model", None):
            lib.sembed_model_free(self._model)
        self._ctx = self._model = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 3:
        sys.exit("usage: python3 sembed.py MODEL_DIR TEXT [TEXT...]")
    with Model(sys.argv[1], device="auto") as m:
        vecs = m.encode(sys.argv[2:], numpy=False)
        for t, v in zip(sys.argv[2:], vecs):
            dot = sum(a * b for a, b in zip(vecs[0], v))
            print("%-40.40s dim %d, dot product with the first %.4f" % (t, len(v), dot))
