#!/usr/bin/env python3
"""Tokenizer parity corpus, golden files and benchmark corpus for sembed.

Subcommands (see tests/golden/tokenizer/README.md):

  corpus        build tests/golden/tokenizer/corpus.jsonl.gz from text found on this
                machine (Debian docs, man pages, Python stdlib, C headers) plus synthetic
                edge cases.  Deterministic for a given machine; generated ONCE and committed.
  golden [DIR]  encode every corpus text with Hugging Face `tokenizers` for each model
                folder (default: every folder with a tokenizer.json under
                ${SEMBED_MODELS:-~/.cache/sembed/models}) and write
                tests/golden/tokenizer/<folder>.jsonl.gz and <folder>.meta.json.
  all [DIR]     corpus (only if missing, or with --rebuild-corpus) then golden.
  bench-corpus  build bench/corpus/mixed.jsonl.gz (12,000 real passages) and
                bench/corpus/queries.jsonl.gz (1,000 short queries).

Needs: Python >= 3.8, `pip install tokenizers` (golden, bench-corpus), `man` and `col`
(corpus, bench-corpus).
"""

import argparse
import ast
import base64
import gzip
import hashlib
import io
import itertools
import json
import os
import re
import string
import subprocess
import sys
import sysconfig
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import random

REPO = Path(__file__).resolve().parent.parent
GOLDEN_DIR = REPO / "tests" / "golden" / "tokenizer"
CORPUS_PATH = GOLDEN_DIR / "corpus.jsonl.gz"
BENCH_DIR = REPO / "bench" / "corpus"
MAX_FILE_BYTES = 4 * 1024 * 1024
MIN_TEXTS = 20000
MAN_CACHE = Path(os.environ.get("SEMBED_MAN_CACHE", "/tmp/sembed-man-cache"))


def models_root():
    return Path(os.environ.get("SEMBED_MODELS") or
                os.path.join(os.path.expanduser("~"), ".cache", "sembed", "models"))


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------

def gz_bytes(lines):
    """Deterministic gzip -9 (mtime 0, no file name) of ASCII JSON lines."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as g:
        for ln in lines:
            g.write(ln.encode("ascii"))
            g.write(b"\n")
    return buf.getvalue()


def write_file(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    size = len(data)
    flag = "" if size <= MAX_FILE_BYTES else "   <-- OVER 4 MiB LIMIT"
    print(f"wrote {path.relative_to(REPO)}: {size:,} bytes{flag}")
    return size


def read_jsonl_gz(path):
    with gzip.open(path, "rt", encoding="ascii") as f:
        return [json.loads(ln) for ln in f]


def read_text(path, limit=400_000):
    """Read a (possibly gzipped) text file as UTF-8; None when it is not valid UTF-8."""
    try:
        data = open(path, "rb").read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile, ValueError):
        return None
    if b"\0" in data[:4096]:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text[:limit]


def ch(cp):
    return chr(cp)


def assigned_in(lo, hi, cats=None):
    out = []
    for cp in range(lo, hi + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = unicodedata.category(chr(cp))
        if c == "Cn":
            continue
        if cats is None or c in cats or c[0] in cats:
            out.append(chr(cp))
    return out


def letter_ratio(s):
    non_space = [c for c in s if not c.isspace()]
    if not non_space:
        return 0.0
    return sum(1 for c in non_space if c.isalpha()) / len(non_space)


SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def sentences(p):
    return [s.strip() for s in SENT_SPLIT.split(p) if s.strip()]


# --------------------------------------------------------------------------------------
# real text sources found on this machine
# --------------------------------------------------------------------------------------

DOC_NAME = re.compile(r"^(readme|news|changelog|changes|authors|todo|faq|thanks|history|bugs|"
                      r"copyright|install|credits|notes|usage|hacking|contributing)", re.I)
DOC_EXT = (".txt", ".md", ".rst", ".text")


def doc_files():
    seen = set()
    out = []
    roots = ["/usr/share/doc", "/usr/share/common-licenses"]
    for root in roots:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                base = f[:-3] if f.endswith(".gz") else f
                if not (base.lower().endswith(DOC_EXT) or DOC_NAME.match(base)
                        or root.endswith("common-licenses")):
                    continue
                p = os.path.join(d, f)
                rp = os.path.realpath(p)
                if rp in seen or not os.path.isfile(rp):
                    continue
                seen.add(rp)
                out.append(p)
    return out


def blocks(text):
    """Blank-line separated blocks of a plain text file."""
    text = text.replace("\r\n", "\n")
    for b in re.split(r"\n[ \t]*\n", text):
        b = b.strip("\n")
        if b.strip():
            yield b


def flatten(block):
    return re.sub(r"[ \t]+", " ", " ".join(l.strip() for l in block.split("\n") if l.strip())).strip()


def is_prose(p, min_words=4, ratio=0.65):
    return len(p.split()) >= min_words and letter_ratio(p) >= ratio and not re.fullmatch(r"[-=*_~#. ]+", p)


def doc_paragraphs(max_per_file=150):
    """(flat paragraph, raw block) pairs from Debian docs and licenses, per-file capped."""
    out = []
    for p in doc_files():
        t = read_text(p)
        if not t:
            continue
        n = 0
        for b in blocks(t):
            flat = flatten(b)
            if len(flat) < 20:
                continue
            out.append((flat, b))
            n += 1
            if n >= max_per_file:
                break
    return out


def render_man(path):
    MAN_CACHE.mkdir(parents=True, exist_ok=True)
    c = MAN_CACHE / (hashlib.sha1(path.encode()).hexdigest() + ".txt")
    if c.exists():
        return c.read_text("utf-8")
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", MANWIDTH="4000",
               MANPAGER="cat", PAGER="cat", MANROFFSEQ="")
    env.pop("MAN_KEEP_FORMATTING", None)
    try:
        p = subprocess.run(["man", "-E", "UTF-8", "-l", path], capture_output=True, env=env, timeout=60)
        q = subprocess.run(["col", "-b", "-x"], input=p.stdout, capture_output=True, env=env, timeout=60)
        txt = q.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        txt = ""
    c.write_text(txt, "utf-8")
    return txt


def man_paragraphs(txt):
    lines = txt.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    lines = lines[1:-1]  # header and footer
    out, cur = [], []
    for ln in lines:
        if not ln.strip() or not ln.startswith(" "):  # blank line or section heading
            if cur:
                out.append(flatten("\n".join(cur)))
                cur = []
            continue
        cur.append(ln)
    if cur:
        out.append(flatten("\n".join(cur)))
    return [p for p in out if p and "\ufffd" not in p]


def man_files(langs):
    out = []
    for lang in langs:
        base = "/usr/share/man" if lang == "en" else f"/usr/share/man/{lang}"
        for sec in range(1, 9):
            d = f"{base}/man{sec}"
            if not os.path.isdir(d):
                continue
            for f in sorted(os.listdir(d)):
                p = os.path.join(d, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    out.append((lang, p))
    return out


def render_many(paths):
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2))) as ex:
        return list(ex.map(render_man, paths))


def stdlib_py_files():
    root = sysconfig.get_paths()["stdlib"]
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in ("site-packages", "test", "tests", "__pycache__",
                                                      "idle_test", "dist-packages"))
        for f in sorted(files):
            if f.endswith(".py"):
                out.append(os.path.join(d, f))
    return out


def c_files():
    out = []
    for root in ["/usr/include", "/usr/share/doc"]:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                if f.endswith((".h", ".c", ".c.gz")):
                    out.append(os.path.join(d, f))
    return out


# --------------------------------------------------------------------------------------
# corpus categories
# --------------------------------------------------------------------------------------

class Corpus:
    def __init__(self):
        self.items = []  # (category, text)

    def add(self, cat, texts):
        for t in texts:
            assert isinstance(t, str)
            t.encode("utf-8")  # no lone surrogates
            self.items.append((cat, t))


def cat_prose(rng, docs):
    flat = sorted({f for f, _ in docs if is_prose(f) and len(f) <= 1500})
    raw = sorted({b for f, b in docs if is_prose(f) and len(b) <= 1500 and "\n" in b})
    sents = sorted({s for f in flat for s in sentences(f) if 15 <= len(s) <= 400 and is_prose(s, 3)})
    out = rng.sample(flat, min(2000, len(flat)))
    out += rng.sample(raw, min(500, len(raw)))
    out += rng.sample(sents, min(1500, len(sents)))
    return out


def cat_man_multilingual(rng):
    langs = sorted(d for d in os.listdir("/usr/share/man")
                   if os.path.isdir(f"/usr/share/man/{d}") and not d.startswith("man"))
    files = man_files(langs)
    texts = render_many([p for _, p in files])
    per_lang = {}
    for (lang, _), t in zip(files, texts):
        for p in man_paragraphs(t):
            if len(p.split()) >= 2 and len(p) <= 1500 and letter_ratio(p) >= 0.5:
                per_lang.setdefault(lang, set()).add(p)
    # stratified: an equal share per language (more for CJK/Cyrillic which are rarer elsewhere)
    out = []
    weights = {l: (3 if l in ("ja", "ko", "zh_CN", "zh_TW", "ru", "uk", "sr") else 1) for l in per_lang}
    total_w = sum(weights.values())
    for lang in sorted(per_lang):
        ps = sorted(per_lang[lang])
        k = min(len(ps), round(1500 * weights[lang] / total_w))
        out += rng.sample(ps, k)
    return out, {l: len(v) for l, v in per_lang.items()}


def cat_docstrings(rng, pyfiles):
    ds = set()
    for p in pyfiles:
        try:
            src = open(p, encoding="utf-8").read()
            tree = ast.parse(src)
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                raw = ast.get_docstring(node, clean=False)
                if raw and len(raw) >= 10:
                    ds.add(raw[:3000])
    ds = sorted(ds)
    out = []
    for d in rng.sample(ds, min(1200, len(ds))):
        out.append(d if rng.random() < 0.5 else " ".join(d.split()))
    return out


def cat_code(rng, pyfiles, cfiles):
    out = []
    pyfiles = rng.sample(pyfiles, min(500, len(pyfiles)))
    for _ in range(900):
        p = rng.choice(pyfiles)
        try:
            lines = open(p, encoding="utf-8").read().split("\n")
        except (UnicodeDecodeError, OSError):
            continue
        if len(lines) < 2:
            continue
        a = rng.randrange(len(lines))
        n = rng.choice([1, 1, 2, 3, 5, 8, 12, 20])
        snip = "\n".join(lines[a:a + n])
        if snip.strip():
            out.append(snip)
    cfiles = rng.sample(cfiles, min(600, len(cfiles)))
    for _ in range(600):
        p = rng.choice(cfiles)
        t = read_text(p)
        if not t:
            continue
        lines = t.split("\n")
        a = rng.randrange(len(lines))
        n = rng.choice([1, 2, 3, 5, 8, 12, 20])
        snip = "\n".join(lines[a:a + n])
        if snip.strip():
            out.append(snip)
    return out


WORDS = ("the quick brown fox jumps over lazy dog see for details visit contact send mail to "
         "download from path file config user home server error warning version release build "
         "install package library token model vector embedding text search query").split()

TLDS = ["com", "org", "net", "de", "co.uk", "io", "jp", "xn--p1ai", "museum", "example"]


def rand_word(rng, alphabet=string.ascii_lowercase, lo=2, hi=10):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def cat_urls(rng, docs):
    urlre = re.compile(r"(?:https?|ftp|git)://[^\s<>\"')\]]+")
    real = sorted({u for f, _ in docs for u in urlre.findall(f)})
    paths = []
    for root in ["/usr/share/doc", "/usr/lib", "/etc", "/usr/include"]:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files)[:5]:
                paths.append(os.path.join(d, f))
            if len(paths) > 20000:
                break
    paths.sort()
    out = []

    def url():
        r = rng.random()
        if r < 0.45 and real:
            return rng.choice(real)
        scheme = rng.choice(["http", "https", "https", "ftp", "ws", "file", "s3", "git+ssh"])
        host = ".".join(rand_word(rng) for _ in range(rng.randint(1, 3))) + "." + rng.choice(TLDS)
        if rng.random() < 0.1:
            host = rng.choice(["münchen.de", "пример.рф", "例え.jp", "[::1]", "[2001:db8::1]", "127.0.0.1",
                               "192.168.0.1", "localhost"])
        u = f"{scheme}://{host}"
        if rng.random() < 0.3:
            u += f":{rng.randint(1, 65535)}"
        for _ in range(rng.randint(0, 5)):
            u += "/" + rng.choice([rand_word(rng), rand_word(rng, string.ascii_letters + string.digits + "-_.~"),
                                   "%E2%82%AC", "%20", "~user", "a%2Fb", "index.html", "v1.2.3", "über"])
        if rng.random() < 0.4:
            u += "?" + "&".join(f"{rand_word(rng)}={rand_word(rng, string.ascii_letters + string.digits + '%+-')}"
                                for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.2:
            u += "#" + rand_word(rng)
        return u

    def email():
        user = rng.choice([rand_word(rng), rand_word(rng) + "." + rand_word(rng), rand_word(rng) + "+tag",
                           rand_word(rng) + "_" + str(rng.randint(1, 999)), "first.o'last", "ünïcode"])
        return f"{user}@{rand_word(rng)}.{rng.choice(TLDS)}"

    def path():
        r = rng.random()
        if r < 0.5:
            return rng.choice(paths)
        if r < 0.7:
            return "C:\\" + "\\".join(rand_word(rng, string.ascii_letters) for _ in range(rng.randint(1, 5))) + \
                rng.choice([".exe", ".dll", ".txt", "", ".tar.gz"])
        if r < 0.85:
            return rng.choice(["~/", "./", "../", "../../", "/tmp/", "$HOME/", "%APPDATA%\\"]) + \
                "/".join(rand_word(rng) for _ in range(rng.randint(1, 4)))
        return "/" + "/".join(rand_word(rng, string.ascii_letters + string.digits + "-_.") for _ in range(rng.randint(2, 8)))

    def blob():
        r = rng.random()
        n = rng.choice([3, 8, 16, 24, 32, 48, 64, 75, 76, 100, 150, 300, 600])
        data = bytes(rng.getrandbits(8) for _ in range(n))
        if r < 0.4:
            return base64.b64encode(data).decode()
        if r < 0.5:
            b = base64.b64encode(data).decode()
            return "\n".join(b[i:i + 76] for i in range(0, len(b), 76))
        if r < 0.6:
            return base64.urlsafe_b64encode(data).decode().rstrip("=")
        if r < 0.7:
            return data.hex()
        if r < 0.75:
            return hashlib.sha256(data).hexdigest()
        if r < 0.8:
            h = data.hex().ljust(32, "0")
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        if r < 0.85:
            return ".".join(base64.urlsafe_b64encode(data[i::3]).decode().rstrip("=") for i in range(3))
        if r < 0.9:
            return "".join(rng.choice(string.digits) for _ in range(rng.randint(20, 200)))
        if r < 0.95:
            return "".join(w.capitalize() for w in rng.sample(WORDS, rng.randint(4, 15)))
        return rng.choice(string.ascii_letters) * rng.randint(20, 300)

    longs = ["Donaudampfschifffahrtsgesellschaftskapitän", "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz",
             "pneumonoultramicroscopicsilicovolcanoconiosis", "Llanfairpwllgwyngyllgogerychwyndrobwllllantysiliogogogoch",
             "supercalifragilisticexpialidocious", "AbstractSingletonProxyFactoryBean",
             "methionylthreonylthreonylglutaminylarginyltyrosylglutamylserylleucylphenylalanylalanylglutaminyl",
             "hippopotomonstrosesquippedaliophobia", "Taumatawhakatangihangakoauauotamateaturipukakapikimaungahoronukupokaiwhenuakitanatahu"]
    gens = [url, url, email, path, path, blob, blob]
    ctx = ["{}", "{}", "See {} for details.", "({})", "<{}>", "\"{}\"", "Contact: {}", "{}.", "{},{}",
           "Visit {} or {} today", "[link]({})", "{}\n{}", "url={}", "{} {} {}"]
    for i in range(1500):
        if rng.random() < 0.05:
            items = [rng.choice(longs)]
        else:
            items = []
        tpl = rng.choice(ctx)
        k = tpl.count("{}")
        vals = [rng.choice(gens)() for _ in range(k)]
        if items:
            vals[0] = items[0]
        out.append(tpl.format(*vals))
    return out


# scripts ------------------------------------------------------------------------------

PANGRAMS = [
    "我能吞下玻璃而不伤身体。", "我能吞下玻璃而不傷身體。", "天地玄黃，宇宙洪荒。日月盈昃，辰宿列張。",
    "いろはにほへと ちりぬるを わかよたれそ つねならむ うゐのおくやま けふこえて あさきゆめみし ゑひもせす",
    "私はガラスを食べられます。それは私を傷つけません。", "ｶﾞﾗｽを食べられます。ﾊﾟﾝも食べます。",
    "東京都渋谷区で「ラーメン」を食べた。", "キーボードのショートカットキーを覚えましょう。",
    "키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다.", "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요.",
    "대한민국의 수도는 서울입니다.", "한국어 텍스트 임베딩 모델",
    "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق.",
    "أَنَا قَادِرٌ عَلَى أَكْلِ الزُّجَاجِ وَ هَذَا لَا يُؤْلِمُنِي.", "مرحبا بالعالم! كيف حالك؟",
    "דג סקרן שט בים מאוכזב ולפתע מצא חברה.", "אֲנִי יָכוֹל לֶאֱכֹל זְכוּכִית וְזֶה לֹא מַזִּיק לִי.", "שלום עולם!",
    "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम।",
    "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती।", "नमस्ते दुनिया",
    "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน", "ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ", "สวัสดีชาวโลก",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.", "Я могу есть стекло, оно мне не вредит.",
    "Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства.",
    "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!", "Ёж и йод; ЁЖ И ЙОД.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.", "Μπορώ να φάω σπασμένα γυαλιά χωρίς να πάθω τίποτα.",
    "ΟΔΥΣΣΕΥΣ ο πολύτροπος. Σίσυφος. ΣΊΣΥΦΟΣ. ὁ λόγος, ἀρχῇ, ᾠδή.",
    "Τάχιστη αλώπηξ βαφής ψημένη γη, δρασκελίζει υπέρ νωθρού κυνός.",
    "Pchnąć w tę łódź jeża lub ośm skrzyń fig.", "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Árvíztűrő tükörfúrógép.", "Þú kannt að drekka kaffi; ævintýri á Íslandi.",
    "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.",
    "Portez ce vieux whisky au juge blond qui fume.", "El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío.",
    "Tiếng Việt có dấu: Nguyễn Thị Minh Khai, Hà Nội, Đà Nẵng.", "Pijamalı hasta yağız şoföre çabucak güvendi.",
    "Եթե դու ապակի ես ուտում, Հայաստանում ես։", "მინას ვჭამ და არა მტკივა.", "ሰማይ አይታረስ ንጉሥ አይከሰስ።",
    "ᐊᓕᒍᖅ ᓂᕆᐊᔪᖅ ᐃᓄᒃᑎᑐᑦ", "ᚠᛇᚻ᛫ᛒᛦᚦ᛫ᚠᚱᚩᚠᚢᚱ", "ཤེལ་སྒོ་ཟ་ནས་ང་ན་གི་མ་རེད།", "ខ្ញុំអាចញុំកញ្ចក់បាន",
    "ນ້ອຍ ຂ້ອຍກິນແກ້ວໄດ້", "မြန်မာစာ", "සිංහල භාෂාව", "தமிழ் மொழி", "తెలుగు భాష", "ಕನ್ನಡ", "മലയാളം", "ગુજરાતી", "ਪੰਜਾਬੀ", "বাংলা ভাষা",
]


def script_pools():
    R = lambda a, b: [chr(c) for c in range(a, b + 1)]
    A = assigned_in
    pools = {
        "cjk_bmp": A(0x4E00, 0x9FFF), "cjk_extA": A(0x3400, 0x4DBF), "cjk_extB": A(0x20000, 0x2A6DF),
        "cjk_extC": A(0x2A700, 0x2B73F), "cjk_extD": A(0x2B740, 0x2B81F),
        "cjk_extE_lo": A(0x2B820, 0x2B91F), "cjk_extE_hi": A(0x2B920, 0x2CEAF),
        "cjk_extF": A(0x2CEB0, 0x2EBEF), "cjk_extG": A(0x30000, 0x3134F),
        "cjk_compat": A(0xF900, 0xFAFF), "cjk_compat_sup": A(0x2F800, 0x2FA1F),
        "cjk_radicals": A(0x2E80, 0x2FDF),
        "hiragana": A(0x3041, 0x3096) + ["ゝ", "ゞ", "ゟ"], "katakana": A(0x30A1, 0x30FA) + ["ー", "ヽ", "ヾ"],
        "hw_katakana": R(0xFF66, 0xFF9D), "hangul": R(0xAC00, 0xD7A3),
        "jamo_L": R(0x1100, 0x1112), "jamo_V": R(0x1161, 0x1175), "jamo_T": R(0x11A8, 0x11C2),
        "compat_jamo": A(0x3131, 0x318E), "hw_hangul": A(0xFFA0, 0xFFDC),
        "arabic": R(0x0621, 0x063A) + R(0x0641, 0x064A), "arabic_marks": R(0x064B, 0x0652),
        "arabic_pres": A(0xFE70, 0xFEFC, "L"), "hebrew": R(0x05D0, 0x05EA), "hebrew_marks": R(0x05B0, 0x05BC),
        "devanagari": R(0x0905, 0x0939), "deva_signs": R(0x093E, 0x094C) + ["\u094d", "\u093c", "\u0902", "\u0901"],
        "thai": R(0x0E01, 0x0E2E), "thai_marks": ["\u0e31"] + R(0x0E34, 0x0E3A) + R(0x0E47, 0x0E4E),
        "thai_vowels": R(0x0E30, 0x0E33) + R(0x0E40, 0x0E44),
        "cyrillic": R(0x0410, 0x044F) + list("ЁёЇїЄєІіҐґЎўЙйЂђЉљЊњЋћЏџ"),
        "greek": R(0x0391, 0x03A1) + R(0x03A3, 0x03A9) + R(0x03B1, 0x03C9) + list("άέήίόύώΐΰΆΈΉΊΌΎΏϊϋΪΫς"),
        "greek_ext": A(0x1F00, 0x1FFE, "L"),
    }
    return pools


def cat_scripts(rng):
    P = script_pools()
    out = []

    def word(pool, lo=1, hi=8, marks=None, pm=0.0):
        w = []
        for _ in range(rng.randint(lo, hi)):
            w.append(rng.choice(P[pool]))
            if marks and rng.random() < pm:
                w.append(rng.choice(P[marks]))
        return "".join(w)

    def sent(make, n_lo=2, n_hi=12, sep=" ", end="."):
        return sep.join(make() for _ in range(rng.randint(n_lo, n_hi))) + end

    latin = lambda: rand_word(rng, string.ascii_letters, 1, 9)
    cjk_all = ["cjk_bmp"] * 8 + ["cjk_extA", "cjk_extB", "cjk_extC", "cjk_extD", "cjk_extE_lo", "cjk_extE_hi",
                                 "cjk_extF", "cjk_extG", "cjk_compat", "cjk_compat_sup", "cjk_radicals"]
    kana_all = ["hiragana", "hiragana", "katakana", "hw_katakana"]

    def cjk_word():
        return word(rng.choice(cjk_all), 1, 6)

    def ja_word():
        r = rng.random()
        if r < 0.3:
            return word("cjk_bmp", 1, 3) + word("hiragana", 1, 4)
        if r < 0.55:
            return word("katakana", 2, 8)
        if r < 0.7:
            # half-width katakana with voiced / semi-voiced sound marks
            w = []
            for _ in range(rng.randint(2, 8)):
                w.append(rng.choice(P["hw_katakana"]))
                if rng.random() < 0.4:
                    w.append(rng.choice(["\uff9e", "\uff9f"]))
            return "".join(w)
        if r < 0.8:
            # decomposed dakuten: base + U+3099/U+309A combining marks
            return unicodedata.normalize("NFD", "".join(rng.choice("がぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽガギグゲゴパピプペポヴ")
                                                        for _ in range(rng.randint(1, 5))))
        return word(rng.choice(kana_all), 1, 10)

    def ko_word():
        r = rng.random()
        if r < 0.6:
            return word("hangul", 1, 5)
        if r < 0.75:
            return unicodedata.normalize("NFD", word("hangul", 1, 4))
        if r < 0.85:
            return "".join(rng.choice(P["jamo_L"]) + rng.choice(P["jamo_V"]) +
                           (rng.choice(P["jamo_T"]) if rng.random() < 0.5 else "") for _ in range(rng.randint(1, 4)))
        if r < 0.95:
            return word("compat_jamo", 1, 5)
        return word("hw_hangul", 1, 5)

    makers = {
        "cjk": (lambda: sent(cjk_word, 1, 10, rng.choice(["", "", " "]), rng.choice(["。", "", "！", "？", "."]))),
        "japanese": (lambda: sent(ja_word, 1, 10, rng.choice(["", "、", " "]), rng.choice(["。", "", "！", "?"]))),
        "hangul": (lambda: sent(ko_word, 1, 10, " ", rng.choice([".", "", "?", "다."]))),
        "arabic": (lambda: sent(lambda: word("arabic", 2, 8, "arabic_marks", rng.choice([0, 0, 0.5])), 2, 12,
                                " ", rng.choice([".", "؟", "،", ""]))),
        "arabic_pres": (lambda: sent(lambda: word("arabic_pres", 2, 6), 1, 6)),
        "hebrew": (lambda: sent(lambda: word("hebrew", 2, 7, "hebrew_marks", rng.choice([0, 0.6])), 2, 12)),
        "devanagari": (lambda: sent(lambda: word("devanagari", 1, 5, "deva_signs", 0.6), 2, 12, " ",
                                    rng.choice(["।", ".", "॥", ""]))),
        "thai": (lambda: sent(lambda: word("thai", 1, 4, "thai_marks", 0.5) + (rng.choice(P["thai_vowels"]) if rng.random() < 0.5 else ""),
                              2, 10, rng.choice(["", " "]), "")),
        "cyrillic": (lambda: sent(lambda: word("cyrillic", 1, 10), 2, 12, " ", rng.choice([".", "!", "?", "…"]))),
        "greek": (lambda: sent(lambda: word("greek", 1, 9) + rng.choice(["", "", "ς"]), 2, 12, " ", rng.choice([".", ";", "·"]))),
        "greek_poly": (lambda: sent(lambda: word("greek_ext", 1, 6), 1, 8)),
    }
    names = sorted(makers)
    for i in range(2300):
        name = names[i % len(names)]
        t = makers[name]()
        r = rng.random()
        if r < 0.15:  # mix with Latin words / digits
            parts = t.split(" ")
            parts.insert(rng.randint(0, len(parts)), rng.choice([latin(), str(rng.randint(0, 99999)), "API", "GPU"]))
            t = " ".join(parts)
        elif r < 0.2:
            t = unicodedata.normalize(rng.choice(["NFD", "NFKC", "NFKD"]), t)
        out.append(t)
    for p in PANGRAMS:
        out.append(p)
        out.append(unicodedata.normalize("NFD", p))
        out.append(unicodedata.normalize("NFKC", p))
    for i in range(700 - 3 * len(PANGRAMS)):
        a, b = rng.sample(PANGRAMS, 2)
        out.append(rng.choice(["{} {}", "{}{}", "{} — {}", "{}\n{}", "«{}» {}", "{} (English: hello world) {}"]).format(a, b))
    return out


# accents / case ------------------------------------------------------------------------

ACCENT_WORDS = ("café naïve résumé fiancée crème brûlée façade jalapeño piñata Ångström Zürich München Köln "
                "Düsseldorf Kraków Łódź Gdańsk Dvořák Škoda Čapek Ærøskøbing São Paulo Brasília Açaí Málaga Cádiz "
                "Nîmes Besançon Hôtel-Dieu coöperate Noël Zoë Chloë Beyoncé Pokémon Tiếng Việt Nguyễn Hà Nội Đà Nẵng "
                "Reykjavík Þórshöfn Māori Hawaiʻi déjà vu über Straße garçon señor año niño Øresund Smørrebrød Bjørn "
                "Ĳsselmeer ǅemal Ŵ Ỳ ÿ Ÿ Œuvre œil Æsir Ångermanälven Štěpán Żółć Ğ ğ Ş ş ő ű Ő Ű ā ē ī ō ū ǖ ǘ ǚ ǜ "
                "Lín Zhōngguó Běijīng Nǐ hǎo Ṭhākur Śiva Kṛṣṇa Ḥasan ʿAlī Ṣalāḥ ḍ ṃ ṅ ñ ẞ ǰ ȷ ı ĸ ŋ ð þ ø ł đ ħ ŀ").split()

CASE_TEXTS = [
    "İstanbul'da ılık bir gün", "DİYARBAKIR ISPARTA IĞDIR", "ıİiI iİ Iı", "İ", "ı", "I\u0307", "i\u0307",
    "STRAẞE", "Straße", "ẞ", "ß", "SS ss ẞß", "GROẞ groß", "ΟΔΥΣΣΕΥΣ", "Σίσυφος", "ΣΑΣ σας", "Σ σ ς",
    "ΌΣΟΣ", "ΑΣ.", "ΑΣ", "Σ.", "ΣΑ", "KELVIN \u212a 273\u212a", "\u212b ÅNGSTRÖM", "\u2126 ohm", "ﬁnance ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ",
    "ŉ ǰ ΐ ΰ և ẖ ẗ ẘ ẙ ẚ", "ǅ ǈ ǋ ǲ Ǆ ǆ", "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ", "ꭰꭱꭲ", "ᲐᲑᲒᲓ ᲛᲮᲔᲓᲠᲣᲚᲘ", "აბგდ", "𐐀𐐁𐐂 𐐨𐐩", "𐒰𐒱𐒲", "𞤀𞤁 𞤢𞤣",
    "𐲀𐲁 𐳀", "𑢠𑢡", "𖹀𖹁", "ſ ẛ ẞ", "ﬓ ﬔ ﬕ ﬖ ﬗ", "ǇǈǉǊǋǌ", "ⅠⅡⅢⅣ ⅰⅱⅲ", "ⒶⒷⒸ ⓐⓑⓒ", "ＡＢＣ ａｂｃ", "𝐀𝐁𝐂 𝒜𝒷𝒸 𝔄𝔅 𝕬𝕭",
    "Ⱥ Ⱦ ⱥ ⱦ", "ꞫꞬꞭ", "Ɐ Ɑ Ɒ", "ᾈ ᾼ ῌ ῼ ᾀ ᾳ", "ΆΈΉΊΌΎΏ", "ÀÉÎÕÜ", "ÀÉÎÕÜ".lower(),
]


def cat_accents(rng):
    out = []
    stack = [chr(c) for c in range(0x0300, 0x036F + 1)]
    for i in range(1000):
        w = rng.sample(ACCENT_WORDS, rng.randint(1, 4))
        txt = " ".join(w)
        r = rng.random()
        if r < 0.25:
            txt = unicodedata.normalize("NFC", txt)
        elif r < 0.5:
            txt = unicodedata.normalize("NFD", txt)
        elif r < 0.6:
            txt = unicodedata.normalize("NFKD", txt)
        elif r < 0.7:  # half NFC, half NFD
            mid = len(txt) // 2
            txt = unicodedata.normalize("NFC", txt[:mid]) + unicodedata.normalize("NFD", txt[mid:])
        elif r < 0.78:
            txt = txt.upper() if rng.random() < 0.5 else txt.title()
        elif r < 0.86:  # stacked combining marks ("zalgo")
            txt = "".join(c + "".join(rng.choice(stack) for _ in range(rng.choice([0, 0, 1, 2, 5])))
                          for c in txt)
        elif r < 0.94:  # combining marks after non-letters / at start
            mark = rng.choice(stack + ["\u20dd", "\u20e3", "\u0903", "\u093f", "\u3099", "\u309a", "\ufe0f", "\u034f"])
            host = rng.choice(["", " ", "1", ".", "中", "😀", "-", "\t", "[SEP]", "a", "ß"])
            txt = rng.choice([host + mark + " " + txt, txt + " " + host + mark, mark + txt, txt + mark])
        else:
            txt = rng.choice(["The {} is {}.", "I met {} in {}.", "{} ({}) — {}", "{}, {} and {}!"]).format(
                *[unicodedata.normalize(rng.choice(["NFC", "NFD"]), rng.choice(ACCENT_WORDS)) for _ in range(3)])
        out.append(txt)
    return out


def cat_case(rng):
    out = []
    for t in CASE_TEXTS:
        out += [t, t.lower(), t.upper(), unicodedata.normalize("NFD", t)]
    # random cased letters from the whole Unicode range known to Python
    cased = [chr(c) for c in range(0x10FFFF + 1) if not 0xD800 <= c <= 0xDFFF and
             unicodedata.category(chr(c)) in ("Lu", "Lt") ]
    while len(out) < 400:
        w = "".join(rng.choice(cased) for _ in range(rng.randint(1, 8)))
        out.append(rng.choice(["{}", "{} word", "Word {}.", "{} {}"]).format(w, w.lower()))
    return out


# emoji / symbols ---------------------------------------------------------------------

EMOJI_SEQ = [
    "👨\u200d👩\u200d👧\u200d👦", "👩\u200d❤️\u200d💋\u200d👨", "🏳️\u200d🌈", "🏳️\u200d⚧️", "👩🏽\u200d💻", "🧑🏿\u200d🚀",
    "👨🏻\u200d🦰", "🤷🏾\u200d♀️", "👁️\u200d🗨️", "🐕\u200d🦺", "🏴\u200d☠️", "❤️\u200d🔥", "🧔\u200d♂️",
    "👋🏻", "👋🏼", "👋🏽", "👋🏾", "👋🏿", "👍🏽", "🏻", "🏿", "🇩🇪", "🇯🇵", "🇺🇸", "🇬🇧", "🇫🇷", "🇺🇦", "🇪🇺", "🇺🇳", "🇦",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "1\ufe0f\u20e3", "#\ufe0f\u20e3", "*\ufe0f\u20e3", "0\u20e3", "🔟", "☺\ufe0e", "☺\ufe0f", "❤️", "❤", "✌️", "✌🏽",
    "😀", "😂", "🤣", "🥰", "🫠", "🫨", "🪿", "🙂", "🤖", "🔥", "💯", "✨", "🎉", "🚀", "🍕", "🐍", "🦀", "☕", "⌚", "⭐",
    "🀄", "🃏", "🅰️", "🆗", "🈁", "🈚", "㊗️", "〽️", "©️", "®️", "™️", "↔️", "▶️", "⏩", "🔴", "🟩", "◻️",
]
SYMBOLS = list("€©®™℠∑∏√∞≈≠≤≥±×÷∂∇∈∉∀∃∅∩∪⊂⊃∧∨¬→←↑↓↔⇒⇔↦°℃℉µΩℏℓ№℗‰‱†‡•‣※★☆♠♣♥♦♪♫✓✔✗✘☐☑☒⌘⌥⎋⏎␣¤¢£¥₩₪₫₭₮₱₲₴₵₸₹₺₼₽₾₿"
               "┌─┐│└┘╔═╗⠁⠃⠉𝐀𝐁𝓐𝔸²³¹ⁿ½¼¾⅓⅔Ⅻⅻ①②ⓐ＄％＋＜＝＞＾｀｜～¦¨¯´¸˜˚˙΄΅᾽῀῁⁄⁒⅍∆∕⊕⊗⋅⌈⌉⌊⌋〈〉⟨⟩⟦⟧⦃⦄")


def cat_emoji(rng):
    emo_pool = [chr(c) for c in list(range(0x1F300, 0x1F5FF)) + list(range(0x1F600, 0x1F64F)) +
                list(range(0x1F680, 0x1F6FF)) + list(range(0x1F900, 0x1F9FF)) + list(range(0x1FA70, 0x1FAFF)) +
                list(range(0x2600, 0x26FF)) + list(range(0x2700, 0x27BF))
                if unicodedata.category(chr(c)) != "Cn"]
    out = []
    words = "great love this hello world deploy party coffee weather happy sad yes no ok".split()
    for i in range(1200):
        r = rng.random()
        e = rng.choice(EMOJI_SEQ) if rng.random() < 0.5 else rng.choice(emo_pool)
        s = rng.choice(SYMBOLS)
        w = rng.choice(words)
        if r < 0.15:
            t = w + e                                  # glued after
        elif r < 0.25:
            t = e + w                                  # glued before
        elif r < 0.4:
            t = f"I {e} {w} {e}{e}"
        elif r < 0.5:
            t = e * rng.randint(1, 6)
        elif r < 0.6:
            t = f"{w}{s}{w} {s} {w}{s}"
        elif r < 0.7:
            t = f"Price: {rng.randint(1, 999)}{s} / {s}{rng.randint(1, 99)}.{rng.randint(0, 99):02d}"
        elif r < 0.8:
            t = "".join(rng.choice(SYMBOLS + EMOJI_SEQ) for _ in range(rng.randint(1, 12)))
        elif r < 0.9:
            t = " ".join(rng.choice([rng.choice(words), rng.choice(EMOJI_SEQ), rng.choice(SYMBOLS)])
                         for _ in range(rng.randint(3, 15)))
        else:
            t = f"x{s}y = {s}(a{s}b) {e}"
        out.append(t)
    for e in EMOJI_SEQ:
        out += [e, "a" + e + "b"]
    for s in SYMBOLS:
        out.append("a" + s + "b " + s)
    return out


# control / format / special code points -------------------------------------------------

FORMAT_CHARS = [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180E, 0x200B, 0x200C, 0x200D,
                0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064,
                0x2066, 0x2067, 0x2068, 0x2069, 0x206A, 0x206F, 0x3164, 0xFE00, 0xFE0F, 0xFEFF, 0xFFA0, 0xFFF9,
                0xFFFA, 0xFFFB, 0xFFFC, 0xFFFD, 0xFFFE, 0xFFFF, 0xFDD0, 0xFDEF, 0x1FFFE, 0x10FFFF, 0xE000, 0xE123,
                0xF8FF, 0xF0000, 0xFFFFD, 0x100000, 0x10FFFD, 0x110BD, 0x1D173, 0x1D17A, 0xE0001, 0xE0020, 0xE007F,
                0xE0100, 0xE01EF, 0x0600, 0x06DD, 0x070F, 0x08E2, 0x13430, 0x1BCA0, 0x0890, 0x0891]
# Unassigned in Unicode 14 (Python 3.11) but assigned later (15.0 / 15.1 / 16.0): shows the
# Unicode version of the Rust tables that `tokenizers` was built with.
NEWER_UNICODE = [0x1FAE8, 0x1FA75, 0x1F7D9, 0x1E030, 0x11F00, 0x11F04, 0x31350, 0x323AF, 0x2EBF0, 0x2EE5D,
                 0x0CF3, 0x0ECE, 0x10EFD, 0x1E4D0, 0x1B132, 0x1B155, 0x1D2C0, 0x2FFC, 0x31EF, 0x1CC00, 0x10D40,
                 0x105C0, 0x16D40, 0x1E5D0, 0x11BC0, 0x1FAE9, 0x1FADC]


def cat_control(rng):
    unassigned = []
    for lo, hi, k in [(0, 0xFFFF, 40), (0x10000, 0x1FFFF, 30), (0x20000, 0x3FFFF, 15), (0x40000, 0xDFFFF, 10),
                      (0xE0000, 0xEFFFF, 5)]:
        cand = []
        while len(cand) < k:
            cp = rng.randint(lo, hi)
            if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) == "Cn":
                cand.append(cp)
        unassigned += cand
    specials = list(range(0x00, 0x20)) + [0x7F] + list(range(0x80, 0xA0)) + FORMAT_CHARS + NEWER_UNICODE + unassigned
    out = []
    hosts = ["hello world", "foo", "naïve café", "中文字", "[SEP]", "a.b", "ｶﾞ", "123", "x y z", "😀👍"]
    for cp in specials:
        c = chr(cp)
        w = rng.choice(hosts)
        out += [c, f"{c}hello", f"hello{c}", f"hel{c}lo wor{c}ld", f"hello {c} world", f"a{c}{c}{c}b",
                f"{w[:len(w) // 2]}{c}{w[len(w) // 2:]}", f"end.{c}", f"{c} {c}"]
    allc = specials
    while len(out) < 1500:
        base = rng.choice(WORDS) + " " + rng.choice(WORDS) + " " + rng.choice(hosts)
        cs = list(base)
        for _ in range(rng.randint(1, 6)):
            cs.insert(rng.randint(0, len(cs)), chr(rng.choice(allc)))
        out.append("".join(cs))
    return out


SPACES = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) + \
         [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
NOT_SPACES = [0x180E, 0x200B, 0xFEFF, 0x2060, 0x1160, 0x3164, 0x115F]


def cat_spaces(rng):
    out = []
    for cp in SPACES + NOT_SPACES:
        s = chr(cp)
        out += [s, s * 3, f"{s}hello", f"hello{s}", f"hello{s}world", f"hello{s}{s}world", f"{s}a{s}b{s}",
                f"word.{s}Next", f"中{s}文", f"[CLS]{s}[SEP]", f"1{s}000{s}000", f"¿{s}qué?{s}", f"«{s}bonjour{s}»",
                f"{s}<s>{s}</s>{s}", f"x {s} y", f"カ{s}タ{s}カ{s}ナ", f"{s}{s}{s}text{s}{s}"]
    allsp = [chr(c) for c in SPACES + NOT_SPACES]
    while len(out) < 1000:
        r = rng.random()
        words = [rng.choice(WORDS + ["naïve", "中文", "한국", "тест", "[MASK]", "<mask>", "ς"]) for _ in range(rng.randint(1, 8))]
        if r < 0.4:
            seps = ["".join(rng.choice(allsp) for _ in range(rng.randint(1, 4))) for _ in range(len(words) + 1)]
        elif r < 0.7:
            seps = [" " * rng.randint(0, 6) for _ in range(len(words) + 1)]
        else:
            seps = [rng.choice(["", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000"]) for _ in range(len(words) + 1)]
        out.append("".join(s + w for s, w in zip(seps, words + [""])))
    return out


def cat_long_words(rng):
    out = []
    letters = {
        "ascii": string.ascii_lowercase, "ASCII": string.ascii_uppercase, "digits": string.digits,
        "alnum": string.ascii_letters + string.digits, "latin1": "éèêëàâäîïôöùûüçñ", "latin1up": "ÉÈÊËÀÂÄÎÏÔÖÙÛÜÇÑ",
        "cyr": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя", "greek": "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ",
        "hira": "".join(script_pools()["hiragana"]), "kata": "".join(script_pools()["katakana"]),
        "hangul": "가나다라마바사아자차카타파하한국어글", "hwkata": "ｱｲｳｴｵｶｷｸｹｺﾞﾟ",
        "deseret": "".join(chr(c) for c in range(0x10428, 0x1044F)), "mathit": "".join(chr(c) for c in range(0x1D44E, 0x1D467)),
        "emoji": "😀😂🥰🔥🚀🍕", "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", "thai": "กขคงจฉชซญดตถทนบปผพฟมยรลวศสหอ",
    }
    lengths = [1, 50, 98, 99, 100, 101, 102, 150, 200, 500, 1000]
    for name in sorted(letters):
        al = letters[name]
        for n in lengths:
            out.append("".join(rng.choice(al) for _ in range(n)))
            if n in (99, 100, 101):
                w = "".join(rng.choice(al) for _ in range(n))
                out += [f"The word {w} is long.", f"{w}.", f"({w})", f"{w} {w[:10]}", f"x{w}"]
    # decomposed accents: raw length != normalized length
    for n in (49, 50, 51, 99, 100, 101):
        out.append("e\u0301" * n)
        out.append("é" * n)
        out.append("E\u0301" * n)
        out.append("İ" * n)
        out.append("ß" * n)
        out.append("ẞ" * n)
        out.append("ﬁ" * n)
        out.append("a" * (n - 1) + "\u0301")
        out.append("\u200b".join("a" * 50 for _ in range(3)))
    # Hangul NFD expansion: 34 syllables with final consonant -> 102 jamo after NFD
    for n in (25, 33, 34, 35, 50, 100):
        out.append("각" * n)
        out.append("가" * n)
        out.append("".join(rng.choice(letters["hangul"]) for _ in range(n)))
    # kana runs are not split: > 100 chars -> [UNK]
    for n in (99, 100, 101, 120):
        out.append("ア" * n)
        out.append("あいうえお" * (n // 5) + "あ" * (n % 5))
    # CJK ideographs are isolated: long runs never [UNK]
    out.append("".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(300)))
    while len(out) < 600:
        al = letters[rng.choice(sorted(letters))]
        n = rng.choice([99, 100, 101, rng.randint(90, 110), rng.randint(100, 400)])
        out.append("".join(rng.choice(al) for _ in range(n)))
    return out


SPECIAL_LITERALS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "<s>", "</s>", "<mask>", "<pad>", "<unk>"]
BROKEN_LITERALS = ["[SEP", "SEP]", "[sep]", "[Sep]", "[ SEP ]", "[ SEP]", "<s >", "< s>", "</s", "/s>", "<S>", "<MASK>",
                   "[MASK ]", "[[SEP]]", "[SEP]]", "[[SEP]", "<<s>>", "<s>>", "[CLS][CLS]", "[SEP][SEP]", "<s></s>",
                   "</s></s>", "[UNK]x", "x[UNK]", "[unused0]", "[unused1]", "[unused99]", "<|endoftext|>",
                   "<|im_start|>", "##s", "##", "##ing", "▁", "▁hello", "▁▁", "▁ ▁", "[SE\u200bP]", "[SEP\u0301]",
                   "［SEP］", "＜s＞", "<mask >", " <mask>", "<mask> ", "  <mask>  ", "\u3000<mask>", "[MASK]\u00a0",
                   "[CLS ]", "[ CLS]", "[cls]", "[Mask]", "<Mask>", "<PAD>", "<UNK>", "[pad]", "[unk]", "<unk >",
                   "<\u200bs>", "[\u00adSEP]", "[SEP]\u0301", "<s>\u0301", "\u00a0[SEP]", "\t[SEP]\t", "[S E P]"]


def cat_special_tokens(rng):
    out = []
    for sp in SPECIAL_LITERALS + BROKEN_LITERALS:
        out += [sp, f"foo{sp}bar", f"Hello {sp} world", f"{sp}start", f"end{sp}", f"{sp} {sp}", f"{sp}{sp}",
                f"The answer is {sp}.", f"中{sp}文", f"naïve{sp}café"]
    allsp = SPECIAL_LITERALS * 3 + BROKEN_LITERALS
    while len(out) < 800:
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 12))]
        for _ in range(rng.randint(1, 4)):
            words.insert(rng.randint(0, len(words)), rng.choice(allsp))
        sep = rng.choice([" ", " ", "", "  "])
        out.append(sep.join(words))
    return out


def cat_empty(rng):
    out = ["", " ", "  ", "\n", "\r\n", "\t", " \t\n\r\x0b\x0c", "\x00", "\u200b", "\ufeff", "\u00ad", "\u0301",
           "\ufffd", "\ue000", "\u200d\u200c", "\u3000\u3000", "\x1f\x7f\x85", "\u2028\u2029", "▁", "\u0300\u0301\u0302",
           "\x00\x00", "\u202e", "\ufe0f", "\U000e0001", " " * 100, "\n" * 50, "\u200b" * 200, " \u0301 "]
    pool = [chr(c) for c in SPACES + NOT_SPACES + [0, 1, 0x7F, 0x85, 0xAD, 0xFEFF, 0xFFFD, 0xE000, 0x202E]]
    while len(out) < 200:
        out.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 20))))
    return out


def cat_long_docs(rng, docs, ml_paragraphs, pyfiles, n=80):
    out = []
    flat = sorted({f for f, _ in docs if len(f) >= 40})
    ml = sorted(ml_paragraphs)
    for i in range(n):
        target = rng.choice([2000, 3000, 5000, 8000, 12000, 20000]) + rng.randint(-500, 500)
        kind = i % 5
        parts = []
        size = 0
        while size < target:
            if kind in (0, 1, 2):
                p = rng.choice(flat)
            elif kind == 3:
                p = rng.choice(ml)
            else:
                p = rng.choice(flat) if rng.random() < 0.5 else rng.choice(PANGRAMS + EMOJI_SEQ + SPECIAL_LITERALS)
            parts.append(p)
            size += len(p) + 2
        sep = rng.choice(["\n\n", "\n", " "])
        out.append(sep.join(parts)[:20000])
    # a couple of whole source files
    for p in rng.sample(pyfiles, 4):
        try:
            out.append(open(p, encoding="utf-8").read()[:20000])
        except (UnicodeDecodeError, OSError):
            pass
    return out


def cat_random(rng):
    assigned = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and
                unicodedata.category(chr(c)) not in ("Cn", "Co", "Cs")]
    out = []
    for i in range(500):  # uniform over all scalar values (mostly unassigned planes)
        s = []
        for _ in range(rng.randint(1, 40)):
            cp = rng.randint(0, 0x10FFFF - 0x800)
            if cp >= 0xD800:
                cp += 0x800
            s.append(chr(cp))
        out.append("".join(s))
    for i in range(600):  # uniform over assigned code points, with spaces
        s = []
        for _ in range(rng.randint(1, 60)):
            s.append(chr(rng.choice(assigned)) if rng.random() < 0.85 else " ")
        out.append("".join(s))
    bmp = [c for c in assigned if c < 0x10000]
    for i in range(400):  # ASCII words mixed with random BMP / assigned characters
        parts = []
        for _ in range(rng.randint(2, 12)):
            r = rng.random()
            if r < 0.5:
                parts.append(rng.choice(WORDS))
            elif r < 0.8:
                parts.append("".join(chr(rng.choice(bmp)) for _ in range(rng.randint(1, 5))))
            else:
                parts.append(rng.choice(WORDS) + chr(rng.choice(assigned)) + rng.choice(WORDS))
        out.append(" ".join(parts))
    return out


def cat_unicode_probes():
    """Every code point (per Python's unicodedata) whose category the BERT normalizer /
    pre-tokenizer looks at: punctuation P*, format Cf, marks Mn/Mc/Me, spaces Zs, upper/title
    case Lu/Lt; 8 probes per text, each wrapped in letters.  tokenizers' own category tables are
    older than Python's (see README), so these pin down exactly which table a port must use.
    Plus both sides of every CJK range boundary of handle_chinese_chars."""
    groups = {"P": [], "Cf": [], "M": [], "Zs": [], "L": []}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if cat[0] == "P":
            groups["P"].append(cp)
        elif cat == "Cf":
            groups["Cf"].append(cp)
        elif cat[0] == "M":
            groups["M"].append(cp)
        elif cat == "Zs":
            groups["Zs"].append(cp)
        elif cat in ("Lu", "Lt"):
            groups["L"].append(cp)
    out = []
    for g in sorted(groups):
        cps = groups[g]
        for i in range(0, len(cps), 8):
            if g == "L":
                out.append(" ".join(f"{chr(cp)}a" for cp in cps[i:i + 8]))
            else:
                out.append(" ".join(f"x{chr(cp)}y" for cp in cps[i:i + 8]))
    borders = [0x3400, 0x4DBF, 0x4E00, 0x9FFF, 0xF900, 0xFAFF, 0x20000, 0x2A6DF, 0x2A700, 0x2B73F,
               0x2B740, 0x2B81F, 0x2B820, 0x2B920, 0x2CEAF, 0x2F800, 0x2FA1F]
    for b in borders:
        for cp in (b - 1, b, b + 1):
            out.append(f"a{chr(cp)}b")
            out.append(f"{chr(cp)}{chr(cp)}")
    return out


PUNCT_ASCII = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
PUNCT_UNI = ["«", "»", "¿", "¡", "、", "。", "「", "」", "『", "』", "—", "–", "‐", "‑", "‒", "―", "‘", "’", "“", "”", "„",
             "‚", "‹", "›", "…", "‥", "・", "·", "•", "¶", "§", "†", "‡", "′", "″", "‰", "【", "】", "《", "》", "〈", "〉",
             "〔", "〕", "（", "）", "！", "？", "，", "．", "：", "；", "～", "〜", "〃", "؟", "،", "؛", "।", "॥", "።",
             "჻", "⸮", "‽", "⁇", "⁈", "⁉", "〰", "﹏", "︰", "︙", "⸺", "⸻", "¦", "⁂", "⁕", "❝", "❞", "⟨", "⟩", "⦅", "⦆"]


def cat_numbers_punct(rng):
    out = []
    W = ("the report shows that revenue grew by in while costs fell to and our team of people shipped "
         "version on at about with over units per day it is not clear whether this was expected").split()

    def num():
        r = rng.random()
        opts = [
            lambda: str(rng.randint(0, 10 ** rng.randint(1, 12))),
            lambda: f"{rng.uniform(-1000, 1000):.{rng.randint(1, 6)}f}",
            lambda: f"{rng.randint(1, 999)},{rng.randint(0, 999):03d},{rng.randint(0, 999):03d}",
            lambda: f"{rng.randint(1, 999)}.{rng.randint(0, 999):03d},{rng.randint(0, 99):02d}",
            lambda: f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            lambda: f"+1 ({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
            lambda: f"{rng.randint(0, 100)}%",
            lambda: f"${rng.randint(0, 9999)}.{rng.randint(0, 99):02d}",
            lambda: f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}-rc{rng.randint(1, 5)}",
            lambda: f"{rng.randint(1, 99)}{rng.choice(['st', 'nd', 'rd', 'th'])}",
            lambda: rng.choice(["½", "¼", "¾", "⅓", "1/2", "3/4"]),
            lambda: f"{rng.uniform(1, 10):.2f}e{rng.randint(-30, 30)}",
            lambda: f"\u2212{rng.randint(1, 100)}",
            lambda: f"{rng.randint(1, 50)}\u2013{rng.randint(51, 100)}",
            lambda: f"#{rng.randint(1, 99999)}",
            lambda: f"@{rand_word(rng)}",
            lambda: f"0x{rng.getrandbits(32):08X}",
            lambda: f"{rng.randint(1, 9)}\u00a0{rng.randint(100, 999)}\u00a0{rng.randint(100, 999)}",
            lambda: "".join(chr(0xFF10 + int(d)) for d in str(rng.randint(0, 99999))),
            lambda: "".join(chr(0x0660 + int(d)) for d in str(rng.randint(0, 99999))),
            lambda: "".join(chr(0x0966 + int(d)) for d in str(rng.randint(0, 99999))),
            lambda: f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} {rng.choice(['a.m.', 'PM', 'Uhr'])}",
            lambda: f"{rng.randint(1, 100)}°C", lambda: f"{rng.randint(1, 100)} km/h", lambda: f"{rng.randint(1, 9)}x{rng.randint(1, 9)}",
        ]
        return rng.choice(opts)()

    for i in range(1500):
        toks = []
        for _ in range(rng.randint(4, 25)):
            r = rng.random()
            if r < 0.55:
                toks.append(rng.choice(W))
            elif r < 0.75:
                toks.append(num())
            elif r < 0.88:
                p = rng.choice(PUNCT_ASCII) if rng.random() < 0.5 else rng.choice(PUNCT_UNI)
                if rng.random() < 0.5 and toks:
                    toks[-1] += p
                else:
                    toks.append(p * rng.choice([1, 1, 1, 2, 3]))
            else:
                q = rng.choice([("“", "”"), ("‘", "’"), ("«\u00a0", "\u00a0»"), ("«\u202f", "\u202f»"), ("„", "“"),
                                ("「", "」"), ("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"), ("¿", "?"), ("¡", "!"),
                                ('"', '"'), ("'", "'"), ("`", "`"), ("【", "】")])
                toks.append(q[0] + rng.choice(W) + q[1])
        t = " ".join(toks)
        t = t[0].upper() + t[1:] + rng.choice([".", "!", "?", "...", "…", "?!", "", ";", ":"])
        if rng.random() < 0.1:
            t = t.replace("'", "’")
        out.append(t)
    out += [PUNCT_ASCII, " ".join(PUNCT_ASCII), "".join(PUNCT_UNI), " ".join(PUNCT_UNI),
            "don't won't can't it's", "don’t won’t can’t it’s", "a$b+c<d=e>f^g`h|i~j", "!!!???...,,,;;;"]
    return out


def build_corpus():
    print("collecting sources ...", flush=True)
    docs = doc_paragraphs()
    pyfiles = stdlib_py_files()
    cfiles = c_files()
    print(f"  doc paragraphs {len(docs):,}, python files {len(pyfiles):,}, C files {len(cfiles):,}", flush=True)
    C = Corpus()
    R = lambda k: random.Random(f"sembed-golden-{k}")
    C.add("prose_en", cat_prose(R("prose"), docs))
    ml, per_lang = cat_man_multilingual(R("man-ml"))
    print("  man paragraphs per language:", dict(sorted(per_lang.items())), flush=True)
    C.add("prose_multilingual_man", ml)
    C.add("python_docstrings", cat_docstrings(R("doc"), pyfiles))
    C.add("source_code", cat_code(R("code"), pyfiles, cfiles))
    C.add("urls_paths_emails_blobs", cat_urls(R("urls"), docs))
    C.add("scripts", cat_scripts(R("scripts")))
    C.add("accents_nfc_nfd", cat_accents(R("accents")))
    C.add("case_mapping", cat_case(R("case")))
    C.add("emoji_symbols", cat_emoji(R("emoji")))
    C.add("control_format_chars", cat_control(R("control")))
    C.add("spaces", cat_spaces(R("spaces")))
    C.add("long_words", cat_long_words(R("long")))
    C.add("special_tokens", cat_special_tokens(R("special")))
    C.add("empty_whitespace", cat_empty(R("empty")))
    C.add("long_documents", cat_long_docs(R("longdocs"), docs, ml, pyfiles))
    C.add("random_codepoints", cat_random(R("random")))
    C.add("numbers_punctuation", cat_numbers_punct(R("numbers")))
    C.add("unicode_table_probes", cat_unicode_probes())

    seen = set()
    items = []
    counts = {}
    for cat, t in C.items:
        if t in seen:
            continue
        seen.add(t)
        items.append((cat, t))
        counts[cat] = counts.get(cat, 0) + 1
    random.Random("sembed-golden-shuffle").shuffle(items)
    texts = [t for _, t in items]
    print("texts per category (after de-duplication):")
    for cat in sorted(counts):
        print(f"  {cat:26s} {counts[cat]:6,d}")
    print(f"  {'TOTAL':26s} {len(texts):6,d}")
    chars = sum(len(t) for t in texts)
    print(f"  characters {chars:,}, longest {max(len(t) for t in texts):,}")
    if len(texts) < MIN_TEXTS:
        sys.exit(f"corpus has only {len(texts)} texts (< {MIN_TEXTS})")
    write_file(CORPUS_PATH, gz_bytes(json.dumps(t, ensure_ascii=True) for t in texts))
    return texts


def load_corpus():
    return read_jsonl_gz(CORPUS_PATH)


def corpus_sha256():
    """sha256 of the decompressed corpus.jsonl (the ASCII JSON lines)."""
    with gzip.open(CORPUS_PATH, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------------------
# golden files
# --------------------------------------------------------------------------------------

def tokenizer_json_for(folder):
    """(tokenizer.json text, how it was obtained).

    A folder with only vocab.txt + tokenizer_config.json (the vocab-only cased BERTs that
    scripts/fetch_models.py rebuilds) is converted in memory by `transformers` exactly as
    sentence-transformers would load it (AutoTokenizer -> fast backend)."""
    tj = folder / "tokenizer.json"
    if tj.is_file():
        return tj.read_text(encoding="utf-8"), "tokenizer.json of the model folder"
    import transformers
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(folder))
    backend = getattr(hf, "backend_tokenizer", None) or hf._tokenizer
    backend.no_padding()
    backend.no_truncation()
    return backend.to_str(), (f"converted in memory from vocab.txt + tokenizer_config.json by transformers "
                              f"{transformers.__version__} AutoTokenizer ({type(hf).__name__}) backend_tokenizer.to_str()")


def model_max_length(folder, tj_text):
    """max_seq_length (sentence-transformers) > tokenizer.json truncation > model_max_length > 512."""
    f = folder / "sentence_bert_config.json"
    if f.exists():
        v = json.loads(f.read_text()).get("max_seq_length")
        if v:
            return int(v), "sentence_bert_config.json:max_seq_length"
    tj = json.loads(tj_text)
    tr = tj.get("truncation")
    if tr and tr.get("max_length"):
        return int(tr["max_length"]), "tokenizer.json:truncation.max_length"
    f = folder / "tokenizer_config.json"
    if f.exists():
        v = json.loads(f.read_text()).get("model_max_length")
        if isinstance(v, (int, float)) and v < 100000:
            return int(v), "tokenizer_config.json:model_max_length"
    return 512, "default"


def utf8_prefix(text):
    pre = [0]
    acc = 0
    for c in text:
        o = ord(c)
        acc += 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4
        pre.append(acc)
    return pre


def golden_for(folder, texts, sha):
    from tokenizers import Tokenizer
    import tokenizers
    folder = Path(folder)
    name = folder.name
    tj_text, tj_source = tokenizer_json_for(folder)
    max_len, src = model_max_length(folder, tj_text)
    tok = Tokenizer.from_str(tj_text)
    tok.no_padding()
    tok.enable_truncation(max_len, stride=0, strategy="longest_first", direction="right")
    full = Tokenizer.from_str(tj_text)
    full.no_padding()
    full.no_truncation()
    lines = []
    n_unk = n_trunc = n_tok = 0
    model = json.loads(tj_text)["model"]
    unk_id = model.get("unk_id") if model.get("type") == "Unigram" else tok.token_to_id(model.get("unk_token") or "")
    B = 512
    for i in range(0, len(texts), B):
        chunk = texts[i:i + B]
        encs = tok.encode_batch(chunk, add_special_tokens=True)
        fulls = full.encode_batch(chunk, add_special_tokens=True)
        for t, e, fe in zip(chunk, encs, fulls):
            pre = utf8_prefix(t)
            offs = []
            for b, en in e.offsets:
                if not 0 <= b <= en <= len(t):
                    raise SystemExit(f"{name}: offsets ({b},{en}) outside text of {len(t)} chars: {t!r:.200}")
                offs.append(pre[b])
                offs.append(pre[en])
            ids = e.ids
            assert len(fe.ids) >= len(ids) and fe.ids[:len(ids) - 1] == ids[:len(ids) - 1]
            n_tok += len(ids)
            n_trunc += len(fe.ids) > len(ids)
            if unk_id is not None:
                n_unk += ids.count(unk_id)
            lines.append(json.dumps({"ids": ids, "offsets": offs, "n_full": len(fe.ids)}, separators=(",", ":")))
    size = write_file(GOLDEN_DIR / f"{name}.jsonl.gz", gz_bytes(lines))
    tj_sha = hashlib.sha256(tj_text.encode("utf-8")).hexdigest()
    meta = {"model": name, "max_length": max_len, "max_length_source": src,
            "tokenizers_version": tokenizers.__version__, "n_texts": len(texts), "corpus_sha256": sha,
            "tokenizer_json": tj_source, "tokenizer_json_sha256": tj_sha, "add_special_tokens": True,
            "truncation": {"strategy": "longest_first", "direction": "right", "stride": 0}, "padding": None}
    (GOLDEN_DIR / f"{name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"  {name}: max_length {max_len} ({src}), {n_tok:,} tokens, {n_trunc:,} texts truncated, "
          f"{n_unk:,} unk tokens, {size:,} bytes", flush=True)
    return size


def default_model_dirs():
    root = models_root()
    if not root.is_dir():
        return []
    return [p for p in sorted(root.iterdir()) if (p / "tokenizer.json").is_file() or
            ((p / "vocab.txt").is_file() and (p / "tokenizer_config.json").is_file())]


def cmd_golden(dirs):
    if not CORPUS_PATH.exists():
        sys.exit(f"{CORPUS_PATH} missing: run `{sys.argv[0]} corpus` first")
    texts = load_corpus()
    sha = corpus_sha256()
    dirs = [Path(d) for d in dirs] or default_model_dirs()
    if not dirs:
        sys.exit(f"no model folders with tokenizer.json under {models_root()}")
    print(f"corpus: {len(texts):,} texts, sha256 {sha}")
    for d in dirs:
        golden_for(d, texts, sha)


# --------------------------------------------------------------------------------------
# benchmark corpus
# --------------------------------------------------------------------------------------

def cmd_bench_corpus(tokenizer_dir):
    from tokenizers import Tokenizer
    if tokenizer_dir is None:
        tokenizer_dir = models_root() / "all-MiniLM-L6-v2"
    tok = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    rng = random.Random("sembed-bench-mixed")
    print("collecting passages ...", flush=True)
    cands = set()
    for flat, _ in doc_paragraphs(max_per_file=60):
        if is_prose(flat, 3, 0.6):
            cands.add(flat)
    n_doc = len(cands)
    files = [p for _, p in man_files(["en"])]
    # at most 20 pages per family ("gcloud-beta-..." and "git-..." pages come by the thousand)
    fam = {}
    for p in rng.sample(files, len(files)):
        fam.setdefault(re.split(r"[-_.]", os.path.basename(p))[0], []).append(p)
    files = sorted(p for ps in fam.values() for p in ps[:20])
    files = sorted(rng.sample(files, min(3000, len(files))))
    for t in render_many(files):
        ps = man_paragraphs(t)
        for p in ps[:40]:
            if is_prose(p, 3, 0.6):
                cands.add(p)
    cands = sorted(cands)
    print(f"  candidates: {len(cands):,} ({n_doc:,} from /usr/share/doc, rest from man pages)", flush=True)
    lens = [len(e.ids) for e in tok.encode_batch(cands, add_special_tokens=True)]
    pool = [(c, n) for c, n in zip(cands, lens) if 8 <= n <= 512]
    # weighted sampling without replacement (Efraimidis-Spirakis) favouring short passages so
    # the mean lands in the 30-60 token range while the tail still reaches 512
    keyed = sorted(((rng.random() ** (1.0 / (1.0 if n <= 48 else (48.0 / n) ** 1.1)), c, n) for c, n in pool),
                   reverse=True)
    chosen = keyed[:12000]
    chosen_set = {c for _, c, _ in chosen}
    order = [(c, n) for _, c, n in chosen]
    rng.shuffle(order)
    ns = sorted(n for _, n in order)
    print(f"  mixed: {len(order):,} passages, tokens mean {sum(ns) / len(ns):.1f}, median {ns[len(ns) // 2]}, "
          f"p90 {ns[int(len(ns) * .9)]}, p99 {ns[int(len(ns) * .99)]}, min {ns[0]}, max {ns[-1]}, "
          f"total {sum(ns):,} tokens (all-MiniLM-L6-v2 tokenizer, incl. [CLS]/[SEP])")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    write_file(BENCH_DIR / "mixed.jsonl.gz", gz_bytes(json.dumps(c, ensure_ascii=True) for c, _ in order))

    # queries: the opening of a sentence from passages NOT in `mixed`, cut at a word boundary
    # to about 16 tokens
    qrng = random.Random("sembed-bench-queries")
    rest = [c for c, n in pool if c not in chosen_set]
    qrng.shuffle(rest)
    queries, seen = [], set()
    for p in rest:
        if len(queries) >= 1000:
            break
        ss = sentences(p)
        s = ss[0] if ss else p
        words = s.split()
        if len(words) < 6 or not s[0].isalpha() or letter_ratio(s) < 0.75:
            continue
        target = qrng.randint(14, 20)
        q = None
        for k in range(3, len(words) + 1):
            cand = " ".join(words[:k]).rstrip(",;:")
            if len(tok.encode(cand).ids) > target:
                break
            q = cand
        if not q or q in seen or len(tok.encode(q).ids) < 12:
            continue
        seen.add(q)
        queries.append(q)
    ql = [len(tok.encode(q).ids) for q in queries]
    print(f"  queries: {len(queries):,}, tokens mean {sum(ql) / len(ql):.1f}, min {min(ql)}, max {max(ql)}")
    write_file(BENCH_DIR / "queries.jsonl.gz", gz_bytes(json.dumps(q, ensure_ascii=True) for q in queries))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("corpus", help="(re)build the corpus")
    g = sub.add_parser("golden", help="write golden files for model folders")
    g.add_argument("dirs", nargs="*")
    a = sub.add_parser("all", help="corpus (if missing) + golden")
    a.add_argument("--rebuild-corpus", action="store_true")
    a.add_argument("dirs", nargs="*")
    b = sub.add_parser("bench-corpus", help="write bench/corpus/{mixed,queries}.jsonl.gz")
    b.add_argument("--tokenizer", help="model folder whose tokenizer.json measures lengths "
                                       "(default: <models>/all-MiniLM-L6-v2)")
    args = ap.parse_args()
    if args.cmd == "corpus":
        build_corpus()
    elif args.cmd == "golden":
        cmd_golden(args.dirs)
    elif args.cmd == "all":
        if args.rebuild_corpus or not CORPUS_PATH.exists():
            build_corpus()
        cmd_golden(args.dirs)
    elif args.cmd == "bench-corpus":
        cmd_bench_corpus(args.tokenizer)


if __name__ == "__main__":
    main()
