// The tokenizer parity corpus and its reference counts (run.sh).
//
//   node corpus.mjs > reference.jsonl
//
// Generates the same texts on every run (a seeded generator, no clock, no
// randomness from outside) and prints one JSON line per text:
//   {"text": ..., "o200k_base": N, "cl100k_base": N,
//    "o200k_base_special": N, "cl100k_base_special": N}
// where N is the length of tiktoken's encode_ordinary(text) and the
// *_special ones of encode(text, "all") (special tokens' strings as the one
// token). Kinds of text: prose, code, JSON, CJK, emoji (with ZWJ sequences,
// skin tones, flags), long numbers, whitespace runs (Unicode spaces too),
// mixed scripts with combining marks, contractions, special-token look-alikes,
// random code points over the whole range, a few long texts, and long runs of
// one character class (single pieces of up to 4 KiB).
import { get_encoding } from "tiktoken";

const kCount = 2400;  // before the long texts and runs at the end

// mulberry32: small, seeded, the same everywhere.
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (list) => list[int(0, list.length - 1)];
const repeat = (n, f) => Array.from({ length: n }, f).join("");
const cp = (lo, hi) => String.fromCodePoint(int(lo, hi));

const words = ("the of and to in is you that it he was for on are as with his they I at be this have from or " +
  "one had by word but not what all were we when your can said there use an each which she do how their if will " +
  "up other about out many then them these so some her would make like him into time has look two more write go " +
  "see number no way could people my than first water been call who oil its now find long down day did get come " +
  "made may part tokenizer budget ledger router Switchboard OpenAI Claude Gemini reasoning").split(" ");
const idents = ["count", "tokens", "x", "i", "buffer_size", "HTTPRequest", "parseJSON", "_private", "kMaxValue",
  "std::vector<int>", "self", "__init__", "fooBar", "BAZ_QUX", "λ", "naïve", "Straße"];
const punct = [".", ",", "!", "?", ";", ":", "...", " - ", " — ", "(", ")", "\"", "'", "«", "»", "“", "”", "’"];
const spaces = [" ", "  ", "\t", "\n", "\r\n", "\n\n", "\u00a0", "\u3000", "\u2003", "\u180e", "\u0085", "\u2028",
  "\u200b", "\u202f", "\u205f", "\u1680", "\v", "\f", "   \n", " \t \n "];
const specials = ["<|endoftext|>", "<|endofprompt|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
  "<|im_start|>", "<|im_end|>", "<|endof", "endoftext|>", "<| endoftext |>", "<|ENDOFTEXT|>", "<||>", "<|"];
const contractions = ["I'm", "you're", "THEY'RE", "it's", "It'S", "we've", "I'll", "she'd", "don't", "CAN'T",
  "it’s", "rock'n'roll", "'s", "'T", "o'clock", "y'all"];
const emoji = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "❤️", "✨", "🤖", "🧪", "👩🏿‍💻", "🫠", "☕", "1️⃣", "#️⃣"];

function prose() {
  let s = "";
  const n = int(1, 60);
  for (let i = 0; i < n; i++) {
    let w = pick(words);
    if (rand() < 0.1) w = w[0].toUpperCase() + w.slice(1);
    if (rand() < 0.05) w = w.toUpperCase();
    s += (i ? " " : "") + w;
    if (rand() < 0.12) s += pick(punct);
  }
  return s;
}

function code() {
  const id = () => pick(idents);
  const lines = [];
  const n = int(1, 25);
  const indent = pick(["  ", "    ", "\t"]);
  for (let i = 0; i < n; i++) {
    const depth = int(0, 4);
    const line = pick([
      () => `${id()} = ${id()}(${id()}, ${int(0, 100000)});`,
      () => `if (${id()} >= ${int(0, 999)} && !${id()}) {`,
      () => `}`,
      () => `def ${id()}(self, *args, **kwargs) -> dict[str, int]:`,
      () => `for (size_t i = 0; i < ${id()}.size(); ++i) ${id()} += i * 0x${int(0, 65535).toString(16)};`,
      () => `// TODO(${id()}): handle the ${pick(words)} case`,
      () => `# ${prose()}`,
      () => `return ${id()}->${id()}[${int(0, 9)}] ?? null;`,
      () => `const re = /[a-z]+\\d{2,}$/gi; console.log(\`\${${id()}}\`);`,
      () => `<div class="${id()}">${prose()}</div>`,
      () => `SELECT ${id()}, COUNT(*) FROM ${id()} WHERE x = '${pick(words)}' GROUP BY 1;`,
    ])();
    lines.push(indent.repeat(depth) + line);
  }
  return lines.join(pick(["\n", "\r\n", "\n\n"])) + (rand() < 0.5 ? "\n" : "");
}

function jsonValue(depth) {
  const r = rand();
  if (depth > 3 || r < 0.3) {
    return pick([() => int(-1e6, 1e9), () => rand() * 1e4, () => pick(words), () => true, () => null,
      () => prose(), () => cp(0x4e00, 0x9fff) + cp(0x4e00, 0x9fff), () => pick(emoji)])();
  }
  if (r < 0.6) return Array.from({ length: int(0, 5) }, () => jsonValue(depth + 1));
  const o = {};
  for (let i = 0; i < int(0, 6); i++) o[pick(idents) + (rand() < 0.3 ? "_" + int(0, 99) : "")] = jsonValue(depth + 1);
  return o;
}
const json = () => JSON.stringify(jsonValue(0), null, pick([undefined, 2, 4, "\t"]));

function cjk() {
  const ranges = [[0x4e00, 0x9fff], [0x3040, 0x309f], [0x30a0, 0x30ff], [0xac00, 0xd7a3], [0x3000, 0x303f],
    [0xff01, 0xff5e], [0x20000, 0x2a6df]];
  return repeat(int(1, 80), () => {
    const r = pick(ranges);
    return rand() < 0.08 ? pick(["、", "。", " ", "\n", "，", "！", pick(words)]) : cp(r[0], r[1]);
  });
}

function numbers() {
  return repeat(int(1, 8), () => pick([
    () => String(int(0, 9)).repeat(int(1, 60)),
    () => repeat(int(1, 40), () => String(int(0, 9))),
    () => `${int(0, 99999)}.${int(0, 99999)}`,
    () => `${int(1, 999)},${String(int(0, 999)).padStart(3, "0")},${String(int(0, 999)).padStart(3, "0")}`,
    () => `-${int(0, 1e9)}e${int(-30, 30)}`,
    () => `0x${int(0, 2 ** 31).toString(16).toUpperCase()}`,
    () => `+1 (${int(200, 999)}) ${int(200, 999)}-${int(1000, 9999)}`,
    () => `${int(1900, 2100)}-${String(int(1, 12)).padStart(2, "0")}-${String(int(1, 28)).padStart(2, "0")}`,
    () => "٣٤٥" + "१२३" + "१" + "Ⅻ" + "½",
  ])() + pick([" ", "", "\n", ", ", "x"]));
}

const whitespace = () => repeat(int(1, 30), () => rand() < 0.7 ? pick(spaces).repeat(int(1, 12)) : pick(words));

function mixedScripts() {
  const ranges = [[0x41, 0x7a], [0x400, 0x4ff], [0x370, 0x3ff], [0x600, 0x6ff], [0x5d0, 0x5ea], [0x900, 0x97f],
    [0xe00, 0xe7f], [0x10a0, 0x10ff], [0x1e00, 0x1eff], [0x300, 0x36f], [0x1f600, 0x1f64f], [0x2200, 0x22ff]];
  return repeat(int(1, 60), () => rand() < 0.15 ? pick(spaces) : cp(...pick(ranges)));
}

const lookAlikes = () => repeat(int(1, 8), () => pick([() => pick(specials), prose, () => pick(spaces),
  () => pick(specials) + pick(specials), () => pick(words) + pick(specials) + pick(words)])());

const withContractions = () => repeat(int(1, 20), () => pick(contractions) + pick([" ", "", ", ", "\n"]));

const emojiText = () => repeat(int(1, 30), () => rand() < 0.6 ? pick(emoji) : pick([" ", pick(words), "\n", "!"]));

function anyCodePoints() {
  return repeat(int(1, 50), () => {
    let c = int(0, 0x10ffff);
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;  // no lone surrogates: not UTF-8
    return String.fromCodePoint(c);
  });
}

const kinds = [prose, code, json, cjk, numbers, whitespace, mixedScripts, lookAlikes, withContractions, emojiText,
  anyCodePoints];

const texts = ["", " ", "\n", "a", "hello world", "<|endoftext|>", "\u180e", "  \n\n  x", "0123456789".repeat(5)];
while (texts.length < kCount - 12) {
  const k = kinds[texts.length % kinds.length];
  texts.push(rand() < 0.2 ? k() + pick(spaces) + pick(kinds)() : k());
}
// A few long texts: every kind in one, up to about 20,000 tokens.
for (let i = 0; i < 12; i++) texts.push(repeat(int(20, 400), () => pick(kinds)() + pick(spaces)));
// Long pieces (129 bytes to 4 KiB, merged through a heap): runs of one
// character class, each one piece of the split.
for (let i = 0; i < 24; i++) {
  const n = int(129, 4000);
  texts.push(pick([
    () => repeat(n, () => String.fromCharCode(int(0x61, 0x7a))),
    () => repeat(Math.floor(n / 3), () => cp(0x4e00, 0x9fff)),
    () => pick(["x", "ab", "abc", " "]).repeat(Math.floor(n / 3)),
    () => repeat(n, () => pick([" ", "\t"])) + "\n",
  ])());
}

const enc = { o200k_base: get_encoding("o200k_base"), cl100k_base: get_encoding("cl100k_base") };
const out = [];
for (const text of texts) {
  const row = { text };
  for (const [name, e] of Object.entries(enc)) {
    row[name] = e.encode_ordinary(text).length;
    row[name + "_special"] = e.encode(text, "all").length;
  }
  out.push(JSON.stringify(row));
}
for (const e of Object.values(enc)) e.free();
process.stdout.write(out.join("\n") + "\n");
