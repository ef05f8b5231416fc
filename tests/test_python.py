"""test_python.py — bindings/python/sembed.py over the built libsembed.so (SEMBED_LIB) against
the sembed binary (SEMBED_CLI) on all-MiniLM-L6-v2: the same vectors bit for bit, numpy and
list outputs alike, prompts, Matryoshka dimensions, token ids and per-text info, and every
failure raised as SembedError with the library's status and message. Exit 77 (skip) when the
model is not cached, unless SEMBED_REQUIRE_MODELS=1."""
import os
import struct
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import sembed  # noqa: E402

MODELS = os.environ.get("SEMBED_MODELS") or os.path.expanduser("~/.cache/sembed/models")
MODEL = os.path.join(MODELS, "all-MiniLM-L6-v2")
TEXTS = ["the first text", "Zürich, a second one", "naïve café — 東京", "x"]


def cli_vectors(texts, *opts):
    """The sembed binary's raw float32 output for texts on the CPU with 2 threads."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "v.raw")
        subprocess.run([os.environ["SEMBED_CLI"], "embed", "-m", MODEL, "-t", "2", "-d", "cpu",
                        "-f", "raw", "-o", out, *opts, *texts], check=True)
        with open(out, "rb") as f:
            return f.read()


class PythonBinding(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = sembed.Model(MODEL, device="cpu", threads=2)

    @classmethod
    def tearDownClass(cls):
        cls.m.close()

    def test_bits_as_the_cli(self):
        v = self.m.encode(TEXTS)
        self.assertEqual(v.shape, (len(TEXTS), 384))
        self.assertEqual(str(v.dtype), "float32")
        self.assertEqual(v.tobytes(), cli_vectors(TEXTS))

    def test_lists_and_one_text(self):
        lists = self.m.encode(TEXTS, numpy=False)
        self.assertEqual(len(lists), len(TEXTS))
        packed = b"".join(struct.pack("%df" % len(r), *r) for r in lists)
        self.assertEqual(packed, cli_vectors(TEXTS))
        one = self.m.encode(TEXTS[1], numpy=False)
        self.assertEqual(one, lists[1])  # batch invariance through the binding
        self.assertEqual(self.m.encode([]).shape, (0, 384))

    def test_dimensions_and_prompt(self):
        v = self.m.encode(TEXTS, dimensions=64)
        self.assertEqual(v.shape, (len(TEXTS), 64))
        self.assertEqual(v.tobytes(), cli_vectors(TEXTS, "--dimensions", "64"))
        norms = (v.astype("float64") ** 2).sum(1) ** 0.5
        self.assertTrue(all(abs(n - 1) < 1e-5 for n in norms), norms)
        # a literal prompt is prepended as text (MiniLM pools over the prompt's tokens too)
        a = self.m.encode("what is sembed?", prompt="query: ")
        b = self.m.encode("query: what is sembed?")
        self.assertEqual(a.tobytes(), b.tobytes())
        self.assertNotEqual(a.tobytes(), self.m.encode("what is sembed?").tobytes())

    def test_info_and_tokens(self):
        long = "word " * 400
        _, info = self.m.encode([TEXTS[0], long], info=True)
        ids = self.m.tokenize(TEXTS[0])
        self.assertEqual(info[0], (len(ids), False))
        self.assertEqual((ids[0], ids[-1]), (101, 102))  # [CLS] ... [SEP]
        self.assertEqual(info[1], (self.m.max_length, True))
        self.assertEqual(self.m.device, "cpu")
        self.assertEqual(len(self.m.tokenize(long)), self.m.max_length)

    def test_errors(self):
        with self.assertRaises(sembed.SembedError) as e:
            sembed.Model(os.path.join(MODEL, "nowhere"))
        self.assertEqual(e.exception.name, "IO")
        self.assertIn("nowhere", str(e.exception))
        with self.assertRaises(sembed.SembedError) as e:
            sembed.Model(MODEL, device="gpu")
        self.assertEqual(e.exception.name, "INVALID_ARG")
        self.assertIn("device 'gpu'", str(e.exception))
        with self.assertRaises(sembed.SembedError) as e:
            sembed.Model(MODEL, device="cuda", precision="int8")
        self.assertIn("'int8'", str(e.exception))
        with self.assertRaises(sembed.SembedError):
            sembed.Model(MODEL, precision="fp16")
        with self.assertRaises(sembed.SembedError) as e:
            self.m.encode(["fine", "bad \ud800 surrogate"])  # not UTF-8 once encoded
        self.assertEqual(e.exception.name, "INPUT")
        self.assertIn("1", str(e.exception))
        with self.assertRaises(sembed.SembedError) as e:
            self.m.encode("x", prompt_name="nosuch")
        self.assertIn("nosuch", str(e.exception))
        with self.assertRaises(sembed.SembedError) as e:
            self.m.encode("x", dimensions=1000)
        self.assertEqual(e.exception.name, "INVALID_ARG")
        with sembed.Model(MODEL, threads=1, strict=True, max_length=8) as s:
            with self.assertRaises(sembed.SembedError) as e:
                s.encode("one two three four five six seven eight nine")
            self.assertEqual(e.exception.name, "TOO_LONG")
        closed = sembed.Model(MODEL, threads=1)
        closed.close()
        with self.assertRaises(sembed.SembedError):
            closed.encode("x")


if __name__ == "__main__":
    if not os.path.exists(os.path.join(MODEL, "config.json")):
        print("all-MiniLM-L6-v2 is not cached (python3 scripts/fetch_models.py all-MiniLM-L6-v2)")
        sys.exit(1 if os.environ.get("SEMBED_REQUIRE_MODELS") == "1" else 77)
    r = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if r.wasSuccessful() and r.testsRun > 0 else 1)
