#!/usr/bin/env python3
"""Write tests/data/unigram/: expected outputs of Hugging Face `tokenizers` for sembed's
Precompiled normalizer, Metaspace pre-tokenizer and Unigram model (tests/test_unigram.c).

Not the end-to-end golden files (scripts/gen_tokenizer_golden.py): these check each piece on
small, hostile inputs, with per-code-point alignments that a full encode never shows.

Needs: tokenizers (the reference) and, for the charsmap, either
  --charsmap-from PATH/tokenizer.json   (an XLM-R-family tokenizer.json; by default the one of
                                         `python3 scripts/fetch_models.py xlm-roberta-tokenizer`), or
  sentencepiece (pip), whose built-in nmt_nfkc rule is compiled into a tiny model here.

Usage: python3 scripts/gen_unigram_fixtures.py [--charsmap-from tokenizer.json] [--out DIR]
"""

import argparse
import base64
import gzip
import json
import os
import random
import struct
import sys
import tempfile

import tokenizers  # noqa: E402
from tokenizers import PreTokenizedString, Regex, Tokenizer  # noqa: E402
from tokenizers import models, normalizers, pre_tokenizers, trainers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "data", "unigram")
SEED = 20240611
DEFAULT_XLMR = os.path.join(
    os.environ.get("SEMBED_MODELS") or os.path.join(os.path.expanduser("~"), ".cache", "sembed", "models"),
    "xlm-roberta-tokenizer", "tokenizer.json")


# ---- the charsmap -------------------------------------------------------------------------


def _proto_fields(b):
    """Minimal protobuf wire-format reader: yields (field, wiretype, value)."""

    def varint(i):
        r = s = 0
        while True:
            x = b[i]
            i += 1
            r |= (x & 0x7F) << s
            s += 7
            if not x & 0x80:
                return r, i

    i = 0
    while i < len(b):
        k, i = varint(i)
        f, w = k >> 3, k & 7
        if w == 0:
            v, i = varint(i)
        elif w == 1:
            v, i = b[i : i + 8], i + 8
        elif w == 2:
            n, i = varint(i)
            v, i = b[i : i + n], i + n
        elif w == 5:
            v, i = b[i : i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % w)
        yield f, w, v


def charsmap_from_sentencepiece():
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as d:
        corpus = os.path.join(d, "c.txt")
        with open(corpus, "w") as f:
            for i in range(200):
                f.write("hello world this is a tiny corpus %d\n" % i)
        spm.SentencePieceTrainer.train(
            input=corpus,
            model_prefix=os.path.join(d, "m"),
            vocab_size=40,
            model_type="unigram",
            normalization_rule_name="nmt_nfkc",
            minloglevel=2,
        )
        model = open(os.path.join(d, "m.model"), "rb").read()
    for f, _, v in _proto_fields(model):
        if f == 3:  # ModelProto.normalizer_spec
            for f2, _, v2 in _proto_fields(v):
                if f2 == 2:  # NormalizerSpec.precompiled_charsmap
                    return bytes(v2), "sentencepiece %s nmt_nfkc" % spm.__version__
    raise RuntimeError("no precompiled_charsmap in the trained model")


def charsmap_from_tokenizer_json(path):
    j = json.load(open(path, encoding="utf-8"))

    def find(n):
        if not isinstance(n, dict):
            return None
        if n.get("type") == "Precompiled":
            return n["precompiled_charsmap"]
        for c in n.get("normalizers") or []:
            r = find(c)
            if r:
                return r
        return None

    b64 = find(j.get("normalizer"))
    if not b64:
        raise RuntimeError("%s has no Precompiled normalizer" % path)
    return base64.b64decode(b64), os.path.basename(os.path.dirname(os.path.abspath(path)))


# ---- inputs ---------------------------------------------------------------------------------

CURATED = [
    "",
    "a",
    "Hello world",
    "  leading and trailing  ",
    "e\u0301x",  # decomposed accent: a 3-byte cluster looked up whole
    "e\u0301\u0301x",  # 5 bytes: the shortest prefix wins, one accent vanishes
    "\u2460\u0301x",  # circled one + accent: "1", the accent is dropped
    "\u00bcx",  # vulgar fraction: one char becomes three
    "\u00bc\x1e\x1eb",  # expansion followed by removals
    "\u2122\x1eg",  # the removal is absorbed by the previous insertion
    "\x1eab",  # removal at the very start: alignments lag by one char
    "a\x1e\x1eb",
    "\uff76\uff9ex",  # half-width katakana + voiced mark: a 6-byte cluster, per char
    "\uff8a\uff9f\uff8b\uff9f",
    "\ufb01x",  # ligature
    "\uff21\uff42\uff43",  # full-width letters
    "\u2460\u2461",
    "a\u200db",  # ZWJ
    "\u3000a\u00a0b\u2028c",  # spaces of several kinds
    "x\x00y",  # NUL stops the trie search
    "\u01c6a",
    "\u337fb",
    "\u2026z",
    "\ufdfa",  # an 18-char expansion
    "\r\n\r\n",  # CR LF is one cluster
    "a\r\nb\rc\nd",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",  # emoji ZWJ sequence
    "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea\U0001f1ec",  # regional indicators
    "\U0001f44d\U0001f3fd ok",  # skin tone modifier
    "\u1100\u1161\u11a8x",  # conjoining jamo
    "\uac00\u0301",
    "\u0915\u094d\u0937\u093f \u0928\u092e\u0938\u094d\u0924\u0947",  # Devanagari
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \ufefb",  # Arabic, lam-alef ligature
    "\u0e01\u0e33 \u0e19\u0e33",  # Thai sara am
    "caf\u00e9 na\u0131ve \u0130stanbul \u00df \u1e9e",
    "\u00c5\u212b\u0041\u030a",  # angstrom sign vs A-ring
    "x\u0308\u0301\u0323y",
    "\u2000\u2001\u2002\u2003 \u200b\u200c\u200e\u2060\ufeff end",
    "\u00ad soft\u00adhyphen",
    "\ue000\U000f0000 private",
    "\u0378\u0379 unassigned",
    "\u2028\u2029\u0085\x0b\x0c",
    "\u2163 \u216b \u2173",  # roman numerals
    "\u3300\u3301\u33ff",  # squared katakana words
    "\u00b2\u00b3\u00b9\u2070\u2074\u2089",
    "\u1e9b\u0323",
    "\u0390\u03b0",
    "\ud55c\uad6d\uc5b4 \u65e5\u672c\u8a9e \u4e2d\u6587",
    "\uff8a\uff9e\uff6f\uff84\uff9e\uff8f\uff9d",
    "<unk> <s> </s>",
    "\u2581already\u2581has\u2581metaspace",
    "\u2581",
    " ",
    "   ",
    "a  b   c",
    # marks newer than utf8proc's Unicode: tokenizers clusters them (Unicode 17)
    "\u00b2\u0897x \u00b2\u1acf \u00bc\u1ad5\u1ae0 \u00a0\u1aeb\u0301 \u00b2\u1ade",
    "\u2460\u0897\u0897 e\u0897\u0301",
]

POOLS = [
    "abcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " " * 12,
    ".,;:!?'\"()[]{}-_/\\@#$%^&*+=<>|~`",
    "\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e7\u00e8\u00e9\u00ea\u00f1\u00f6\u00fc\u00df",
    "\u0300\u0301\u0302\u0303\u0308\u030a\u0323\u0327",
    "\u03b1\u03b2\u03b3\u03b4\u03c3\u03c2\u0391\u03a3\u0390",
    "\u0430\u0431\u0432\u0433\u0434\u0416\u0401\u0451",
    "\u4e00\u4e8c\u4e09\u65e5\u672c\u4e2d\u6587\u5b57",
    "\u3042\u3044\u3046\u30a2\u30a4\u30a6\u3099\u309a",
    "\uff76\uff77\uff78\uff8a\uff9e\uff9f\uff70\uff61",
    "\uff21\uff22\uff41\uff42\uff10\uff11\uff01\uff08",
    "\uac00\ud55c\uad6d\u1100\u1161\u11a8",
    "\u0915\u0937\u094d\u093f\u0928\u092e\u0938\u0924\u0947",
    "\u0627\u0644\u0639\u0631\u0628\u064a\ufefb\u064b",
    "\u0e01\u0e33\u0e19\u0e48\u0e49",
    "\u00bc\u00bd\u2153\u2122\u2026\ufb01\ufb02\u01c6\u337f\u2460",
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\x1e\x1f\x7f\x00",
    "\u3000\u00a0\u2002\u2028\t\n\r",
    "\U0001f600\U0001f44d\U0001f3fd\U0001f1eb\U0001f1f7\u2764\ufe0f",
    "\u2581",
]


def random_texts(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        pools = [rng.choice(POOLS) for _ in range(rng.randint(1, 4))]
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(k)))
    return out


CORPUS_WORDS = (
    "the of and to in is was for that on as with by he at from his an are were this which "
    "be or has had not first one their its new after who they have her she two been other "
    "when there all during into school time may years more most only over city some world "
    "would where later up such used many can state about national out known university "
    "united then made however between film american series part team three while being "
    "le la les des une est dans pour que qui sur avec pas plus der die das und ist nicht "
    "mit sich auf auch el los las por con para una del como hola mundo casa nación "
    "café naïve straße grüße élève français español português"
).split()
CORPUS_EXTRA = [
    "日本語のテキストです",
    "中文文本测试",
    "한국어 텍스트",
    "Ελληνικά κείμενα",
    "русский текст",
    "हिन्दी पाठ",
    "العربية نص",
    "ไทย ข้อความ",
]


def corpus(rng):
    lines = []
    for _ in range(3000):
        words = [rng.choice(CORPUS_WORDS) for _ in range(rng.randint(3, 12))]
        if rng.random() < 0.3:
            words.append(rng.choice(CORPUS_EXTRA))
        if rng.random() < 0.2:
            words.insert(0, words[0].capitalize())
        lines.append(" ".join(words))
    return lines


# ---- expectations -----------------------------------------------------------------------------

SPLIT_CHARS = pre_tokenizers.Split(Regex("[\\s\\S]"), "isolated")


def char_alignments(text, normalize=None, pretok=None):
    """[(cp, ob, oe)] of the normalized (and pre-tokenized) text, one entry per code point:
    tokenizers' own per-char offsets into the original, read through a per-char split."""
    p = PreTokenizedString(text)
    if normalize:
        p.normalize(lambda ns: normalize.normalize(ns))
    if pretok:
        pretok.pre_tokenize(p)
    SPLIT_CHARS.pre_tokenize(p)
    out = []
    for s, (b, e), _ in p.get_splits(offset_referential="original", offset_type="byte"):
        assert len(s) == 1, (text, s)
        out.append((ord(s), b, e))
    return out


def metaspace_words(text, pretok):
    p = PreTokenizedString(text)
    pretok.pre_tokenize(p)
    return [s for s, _, _ in p.get_splits(offset_referential="original", offset_type="byte")]


def byte_offsets(text, offsets):
    """The Python binding reports char offsets; sembed (and the Rust core) use bytes."""
    pos = [0]
    for c in text:
        pos.append(pos[-1] + len(c.encode("utf-8")))
    return [[pos[b], pos[e]] for b, e in offsets]


def write_jsonl_gz(path, rows):
    # mtime=0: the same rows give the same bytes
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as g:
            for r in rows:
                g.write((json.dumps(r, ensure_ascii=True) + "\n").encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--charsmap-from", default=DEFAULT_XLMR if os.path.exists(DEFAULT_XLMR) else None,
                    help="a tokenizer.json with a Precompiled normalizer (default: the cached "
                         "xlm-roberta-tokenizer when fetched, else sentencepiece's nmt_nfkc)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--retrain", action="store_true",
                    help="train model.json anew (the trainer is not deterministic: its scores "
                         "move in the last digits), instead of reusing the one in --out")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(SEED)

    if args.charsmap_from:
        cm, source = charsmap_from_tokenizer_json(args.charsmap_from)
    else:
        cm, source = charsmap_from_sentencepiece()
    pc = normalizers.Precompiled(cm)
    texts = CURATED + random_texts(rng, 600)

    # 1. Precompiled: per-char alignments
    rows = [{"charsmap": base64.b64encode(cm).decode(), "source": source}]
    for t in texts:
        a = char_alignments(t, normalize=pc)
        rows.append({"text": t, "cp": [c for c, _, _ in a], "ob": [b for _, b, _ in a],
                     "oe": [e for _, _, e in a]})
    write_jsonl_gz(os.path.join(args.out, "precompiled.jsonl.gz"), rows)
    n_pc = len(rows) - 1

    # 2. Metaspace: words and per-char alignments, for each scheme and split flag
    rows = []
    for t in texts[:300]:
        for rep in ("\u2581", "_"):
            for scheme in ("always", "first", "never"):
                for split in (True, False):
                    m = pre_tokenizers.Metaspace(replacement=rep, prepend_scheme=scheme, split=split)
                    words = metaspace_words(t, m)
                    a = char_alignments(t, pretok=m)
                    assert "".join(chr(c) for c, _, _ in a) == "".join(words)
                    rows.append({"text": t, "replacement": rep, "scheme": scheme, "split": split,
                                 "words": words, "cp": [c for c, _, _ in a],
                                 "ob": [b for _, b, _ in a], "oe": [e for _, _, e in a]})
    write_jsonl_gz(os.path.join(args.out, "metaspace.jsonl.gz"), rows)
    n_ms = len(rows)

    # 3. Unigram: a model trained here by tokenizers' UnigramTrainer (XLM-R's layout: the
    # specials first, <unk> = 3, Precompiled + Metaspace in front)
    model_path = os.path.join(args.out, "model.json")
    if args.retrain or not os.path.exists(model_path):
        tok = Tokenizer(models.Unigram())
        tok.normalizer = pc
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=700,
                                          special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                          unk_token="<unk>", shrinking_factor=0.75,
                                          n_sub_iterations=2)
        tok.train_from_iterator(corpus(rng), trainer)
        model = json.loads(tok.to_str())["model"]
        assert model["type"] == "Unigram" and model["unk_id"] == 3, model["unk_id"]
        with open(model_path, "w", encoding="utf-8") as f:
            json.dump(model, f, ensure_ascii=False, indent=0)
            f.write("\n")
    else:
        corpus(rng)  # keep the random stream where training leaves it
        model = json.load(open(model_path, encoding="utf-8"))

    # hand-written models for the corner cases: ties, a repeated token, byte fallback
    extra_models = {
        "ties": {"type": "Unigram", "unk_id": 0, "byte_fallback": False, "vocab": [
            ["<unk>", 0.0], ["a", -1.0], ["b", -1.0], ["ab", -2.0], ["c", -1.5], ["bc", -2.5],
            ["abc", -4.0], ["\u00e9", -1.0], ["\u00e9\u00e9", -2.0], ["xy", -0.5]]},
        "repeat": {"type": "Unigram", "unk_id": 1, "byte_fallback": False, "vocab": [
            ["a", -1.0], ["<unk>", 0.0], ["ab", -3.0], ["a", -0.5], ["b", -1.0], ["ab", -1.0]]},
        "bytes": {"type": "Unigram", "unk_id": 0, "byte_fallback": True, "vocab": [
            ["<unk>", 0.0], ["<0xE2>", -0.01], ["<0x85>", -0.02], ["<0xE2>", -0.03],
            ["<0x90>", -0.04], ["<0x91>", -0.05], ["<0x9B>", -0.06], ["Hello", -0.1],
            ["how", -0.2], ["are", -0.3], [" ", -0.4]]},
        "unk_middle": {"type": "Unigram", "unk_id": 2, "byte_fallback": False, "vocab": [
            ["\u2581", -2.0], ["a", -1.0], ["<unk>", 0.0], ["b", -3.0], ["<un", -1.0], ["xx", -9.0]]},
        # positive scores: two unknowns (2 x 90) beat the token "xy" (100), and the fused
        # string "xy" then gets the token's id all the same
        "positive": {"type": "Unigram", "unk_id": 0, "byte_fallback": False, "vocab": [
            ["<unk>", 100.0], ["xy", 100.0], ["a", 100.0], ["xyz", 250.0], ["\u00e9", 120.0]]},
    }
    extra_words = ["", "a", "ab", "abc", "abcabc", "bca", "cab", "\u00e9\u00e9\u00e9", "xyz",
                   "xxyy", "Hello\u2150how are\u2151\u2151", "unfused \u2151\u2151", " unknown\u2030",
                   "<unk>", "a<unk>b", "q<unk>", "<un", "<unk><unk>", "xxx", "zzz\u2581a", "\u2581\u2581",
                   "xy", "axy", "xya", "\u00e9xy"]

    def encode_rows(model_json, words):
        t = Tokenizer.from_str(json.dumps({"version": "1.0", "model": model_json}))
        out = []
        for w in words:
            e = t.encode(w, add_special_tokens=False)
            out.append({"word": w, "ids": e.ids, "offsets": byte_offsets(w, e.offsets)})
        return out

    rows = []
    # words as Metaspace cuts them, so the model sees what it sees in a pipeline
    ms = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    words = []
    for t in texts + corpus(random.Random(SEED + 1))[:300]:
        words.extend(metaspace_words(pc.normalize_str(t), ms))
    words = sorted(set(words), key=lambda w: (len(w), w))
    for r in encode_rows(model, words):
        r["model"] = "trained"
        rows.append(r)
    for name, mj in extra_models.items():
        with open(os.path.join(args.out, "model_%s.json" % name), "w", encoding="utf-8") as f:
            json.dump(mj, f, ensure_ascii=False)
            f.write("\n")
        for r in encode_rows(mj, extra_words + words[:200]):
            r["model"] = name
            rows.append(r)
    write_jsonl_gz(os.path.join(args.out, "unigram.jsonl.gz"), rows)
    n_ug = len(rows)

    # 4. the three together: Precompiled → Metaspace → Unigram, ids and original offsets
    full = Tokenizer(models.Unigram([tuple(v) for v in model["vocab"]], unk_id=3))
    full.normalizer = pc
    full.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    rows = []
    for t in texts + corpus(random.Random(SEED + 2))[:300]:
        e = full.encode(t, add_special_tokens=False)
        rows.append({"text": t, "ids": e.ids, "offsets": byte_offsets(t, e.offsets)})
    write_jsonl_gz(os.path.join(args.out, "pipeline.jsonl.gz"), rows)

    with open(os.path.join(args.out, "README"), "w") as f:
        f.write(
            "Written by scripts/gen_unigram_fixtures.py with tokenizers %s; charsmap: %s.\n"
            "precompiled.jsonl.gz: line 1 the charsmap (base64), then per text the normalized code\n"
            "  points with their original byte ranges (%d texts).\n"
            "metaspace.jsonl.gz: Metaspace words and per-char ranges, per replacement/scheme/split (%d).\n"
            "model*.json: Unigram models; unigram.jsonl.gz: ids and offsets per word and model (%d).\n"
            "pipeline.jsonl.gz: Precompiled + Metaspace + the trained model on whole texts (%d).\n"
            % (tokenizers.__version__, source, n_pc, n_ms, n_ug, len(rows)))
    print("wrote %s" % os.path.abspath(args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
