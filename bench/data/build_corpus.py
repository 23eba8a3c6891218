"""Build ``corpus.jsonl``, the fixed multilingual corpus of the tokenizer benchmark.

Every sentence, snippet and pattern below was written for qwenkit; documents are assembled from
them with a seeded ``random.Random``, so the output is byte-for-byte reproducible:
``uv run python bench/data/build_corpus.py`` rewrites ``bench/data/corpus.jsonl``. JSON lines keep
CR, tabs and unusual spaces intact through git.
"""

# Multilingual text on purpose: confusable characters (fullwidth, Greek) are the point.

from __future__ import annotations

import json
import random
from pathlib import Path

ENGLISH = [
    "The harbour was quiet before dawn, and only the gulls argued over the nets.",
    "She kept a notebook of every bridge she had crossed, with the date and the weather.",
    "Nobody expected the old clock tower to start chiming again after forty silent years.",
    "A good map tells you where you are; a better one tells you what you'll find there.",
    "The recipe called for three eggs, but the bakery's ledger said they'd used four.",
    "Rain drummed on the tin roof while the children counted seconds between thunder and light.",
    "He argued that the budget wasn't wrong, merely optimistic about the price of copper.",
    "By noon the market smelled of oranges, diesel, and freshly ground cardamom.",
    "Engineers measured the tunnel twice, then a third time, because the numbers disagreed.",
    "It's easier to forgive a late train than a train that leaves three minutes early.",
    "The library's basement held maps of towns that had long since changed their names.",
    "Every spring the river rose to the second step of the chapel and no further.",
    "Her grandmother's letters were written in pencil, in a hand that leaned into the wind.",
    "The committee met on Thursdays, argued on Fridays, and decided nothing on Mondays.",
    "We'll need 12 volunteers, 3 ladders and roughly 250 metres of rope by Saturday.",
    "A lighthouse keeper once logged 1,437 ships in a single, unusually calm August.",
    "The violinist tuned her instrument to the hum of the refrigerator, and it worked.",
    "Contracts signed in haste tend to be read at leisure, usually by a lawyer.",
    "They planted walnut trees for grandchildren they had not yet met.",
    "The tram's bell rang twice: once for the driver, once for the dog on the tracks.",
    "If the bridge opens at 6:45, the ferry is the faster way across by nine minutes.",
    "Most of the museum's visitors walked past the smallest painting, which was the oldest.",
    "The orchard's ledger recorded frost on 14 April 1887 and again, oddly, in June.",
    "I'd rather be approximately right than precisely wrong, the surveyor said.",
    "Snow muffled the station so completely that the announcements sounded like secrets.",
    "Each draft of the speech was shorter than the last, and better for it.",
    "The cat treated the new bookshelf as a staircase with literary ambitions.",
    "Our estimate assumed 8% growth; the actual figure, published in March, was 5.2%.",
    "Sailors say the sea keeps no promises but remembers every insult.",
    "The prototype weighed 2.3 kg, which was 300 g more than the specification allowed.",
]

CHINESE = [
    "清晨的湖面上笼着一层薄雾，远处的山只露出淡淡的轮廓。",
    "他把祖父留下的旧手表修好了，指针又开始不紧不慢地走动。",
    "这座城市的地铁在十年间从两条线路扩展到了十二条。",
    "图书馆的角落里有一张靠窗的桌子，总是被同一个学生占着。",
    "市场上的橘子比去年便宜了三成，因为南方今年风调雨顺。",
    "我们计划在下个月完成第一阶段的测试，然后再评估预算。",
    "她说学一门语言最难的不是语法，而是敢于开口说错。",
    "老街的茶馆每天下午三点准时开门，从来没有迟到过一次。",
    "工程师们连续三周加班，终于找到了那个隐藏很深的错误。",
    "雨后的竹林里能听见水珠从叶尖滴落的声音。",
    "这份报告共有四十二页，其中一半是数据表格和附录。",
    "孩子们在院子里放风筝，线断了也笑得很开心。",
    "如果明天不下雨，我们就沿着河边骑车去邻村看看。",
    "博物馆新展出的青铜器距今已有三千多年的历史。",
    "他习惯在每本书的最后一页写下读完的日期和地点。",
    "会议从上午九点开到中午，最后只决定了下次开会的时间。",
    "秋天的银杏叶把整条街道都染成了金黄色。",
    "这家面馆的汤头要熬八个小时，所以每天只卖两百碗。",
    "火车晚点了四十分钟，站台上的人却没有一个抱怨。",
    "她把实验数据重新整理了一遍，发现第三组样本有问题。",
    "山顶的气温比山脚低了将近十度，风也大得多。",
    "新修的桥梁全长一千二百米，预计明年春天通车。",
    "爷爷说种树的人不一定能乘凉，但总得有人先种。",
    "这个算法的时间复杂度是线性的，适合处理大规模数据。",
    "夜里的港口灯火通明，货轮一艘接一艘地靠岸卸货。",
]

JAPANESE = [
    "朝の駅はいつもより静かで、コーヒーの香りだけが漂っていた。",
    "この町の図書館は百年前に建てられ、今も同じ場所にある。",
    "週末は雨の予報なので、ハイキングは来週に延期しましょう。",
    "彼女は毎晩寝る前に十分だけピアノを弾くことにしている。",
    "新しいプロジェクトの締め切りは三月末に決まりました。",
    "桜の季節になると、川沿いの道は写真を撮る人でいっぱいになる。",
    "祖母のレシピには分量が書かれておらず、すべて「適量」だった。",
    "カタカナで書かれたメニューを読むのに、少し時間がかかった。",
    "会議の資料は昨日のうちにメールで送っておきました。",
    "山の上の小さな神社には、古い鈴がひとつ下がっている。",
]

KOREAN = [
    "아침 일찍 시장에 가면 가장 신선한 생선을 살 수 있다.",
    "이 도시는 지난 십 년 동안 인구가 두 배로 늘었다.",
    "비가 그친 뒤 산책로에는 흙냄새가 짙게 남아 있었다.",
    "우리는 다음 주 금요일까지 보고서를 제출해야 합니다.",
    "할머니는 김치를 담글 때 항상 배를 조금 넣으셨다.",
    "도서관 창가 자리는 오후가 되면 햇살이 가득 들어온다.",
    "새로운 지하철 노선이 개통되어 출근 시간이 절반으로 줄었다.",
    "그 가게의 칼국수는 국물이 진하고 면이 쫄깃하다.",
    "밤하늘에 별이 유난히 많이 보이는 날이었다.",
    "회의는 예정보다 한 시간 늦게 끝났지만 결론은 분명했다.",
]

EMOJI = [
    "😀",
    "😂",
    "🥲",
    "🤔",
    "🙏",
    "👍🏽",
    "👩‍💻",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "🇨🇳",
    "🇯🇵",
    "🇰🇷",
    "🇫🇷",
    "❤️",
    "🔥",
    "✨",
    "🎉",
    "🚀",
    "🌧️",
    "☕",
    "🍜",
    "🍣",
    "🐈‍⬛",
    "1️⃣",
    "#️⃣",
    "🧑🏿‍🔬",
    "🫠",
    "🪐",
    "⚠️",
    "✅",
]

CODE_TEMPLATES = [
    '''def {name}(items: list[{type}], limit: int = {n}) -> list[{type}]:
    """Return at most ``limit`` {what}, newest first."""
    result: list[{type}] = []
    for item in sorted(items, key=lambda x: x.{attr}, reverse=True):
        if len(result) >= limit:
            break
        result.append(item)
    return result
''',
    """class {cls}:
    def __init__(self, {attr}: {type}, retries: int = {n}) -> None:
        self.{attr} = {attr}
        self.retries = retries
        self._cache: dict[str, {type}] = {{}}

    def __repr__(self) -> str:
        return f"{cls}({{self.{attr}!r}}, retries={{self.retries}})"
""",
    """async def {name}(client, url: str) -> dict:
    for attempt in range({n}):
        try:
            response = await client.get(url, timeout=10.0)
            response.raise_for_status()
            return response.json()
        except TimeoutError:
            await asyncio.sleep(2 ** attempt)  # back off: 1, 2, 4 ... seconds
    raise RuntimeError(f"gave up on {{url}} after {n} attempts")
""",
    """if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="{what}")
    parser.add_argument("--{attr}", type=int, default={n})
    args = parser.parse_args()
    print({name}(load("{attr}.json"), args.{attr}))
""",
    """SELECT {attr}, COUNT(*) AS n, AVG(price) AS mean_price
FROM {name}
WHERE created_at >= '2025-01-01' AND price > {n}
GROUP BY {attr}
ORDER BY n DESC
LIMIT 20;
""",
]
NAMES = ["latest_orders", "top_scores", "recent_events", "fetch_profile", "sync_inventory"]
TYPES = ["Order", "Score", "Event", "str", "int"]
ATTRS = ["created_at", "score", "timestamp", "user_id", "region"]
CLASSES = ["RetryPolicy", "ShardRouter", "TokenBucket", "FeedCursor", "PriceBook"]
WHATS = ["orders", "scores", "events", "profiles", "items"]


def _prose(rng: random.Random, bank: list[str], joiner: str, paragraphs: int) -> str:
    return "\n\n".join(joiner.join(rng.sample(bank, rng.randint(3, 7))) for _ in range(paragraphs))


def _code(rng: random.Random) -> str:
    blocks = []
    for _ in range(rng.randint(3, 6)):
        template = rng.choice(CODE_TEMPLATES)
        blocks.append(
            template.format(
                name=rng.choice(NAMES),
                type=rng.choice(TYPES),
                attr=rng.choice(ATTRS),
                cls=rng.choice(CLASSES),
                what=rng.choice(WHATS),
                n=rng.randint(1, 500),
            )
        )
    return "\n\n".join(blocks)


def _emoji(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(6, 14)):
        words = rng.choice(ENGLISH).split()
        for _ in range(rng.randint(1, 4)):
            words.insert(
                rng.randrange(len(words) + 1), "".join(rng.sample(EMOJI, rng.randint(1, 3)))
            )
        lines.append(" ".join(words))
    return "\n".join(lines)


def _mixed(rng: random.Random) -> str:
    banks = [ENGLISH, CHINESE, JAPANESE, KOREAN]
    parts = [rng.choice(rng.choice(banks)) for _ in range(rng.randint(8, 16))]
    parts.insert(
        rng.randrange(len(parts)), "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ and cafe\u0301 (NFD é)"
    )
    parts.insert(rng.randrange(len(parts)), "Ünïcödé naïveté — “quotes” … ½ ≤ π ≈ 3.14159 ∑∫√")
    parts.insert(
        rng.randrange(len(parts)), "Привет, мир! Γειά σου κόσμε! مرحبا بالعالم! שלום עולם!"
    )
    parts.insert(rng.randrange(len(parts)), "हिन्दी में लिखा वाक्य। ภาษาไทยไม่มีช่องว่างระหว่างคำ")
    parts.insert(
        rng.randrange(len(parts)),
        rng.choice(EMOJI) + " user@example.com https://qwen.ai/?q=1&lang=zh",
    )
    return rng.choice([" ", "\n", "", " | "]).join(parts)


def _whitespace(rng: random.Random) -> str:
    rows = []
    for _ in range(rng.randint(10, 25)):
        indent = rng.choice(["", "  ", "    ", "\t", "\t\t", "        ", "\u3000\u3000"])
        cells = [rng.choice(ATTRS + NAMES + ["", "42", "3.5", "中文", "✓"]) for _ in range(4)]
        gap = rng.choice(["  ", "    ", "\t", " \t ", "\xa0\xa0", "          "])
        trail = rng.choice(["", " ", "   ", "\t"])
        newline = rng.choice(["\n", "\n", "\r\n", "\n\n", "\n  \n", "\n\n\n\n"])
        rows.append(indent + gap.join(cells) + trail + newline)
    return "".join(rows)


def build(seed: int = 20260601) -> list[dict[str, str]]:
    """The corpus documents, as ``{"kind": ..., "text": ...}`` records."""
    rng = random.Random(seed)
    docs: list[dict[str, str]] = []
    for _ in range(40):
        docs.append({"kind": "english", "text": _prose(rng, ENGLISH, " ", rng.randint(3, 8))})
        docs.append({"kind": "chinese", "text": _prose(rng, CHINESE, "", rng.randint(3, 8))})
        docs.append({"kind": "japanese", "text": _prose(rng, JAPANESE, "", rng.randint(2, 5))})
        docs.append({"kind": "korean", "text": _prose(rng, KOREAN, " ", rng.randint(2, 5))})
        docs.append({"kind": "code", "text": _code(rng)})
        docs.append({"kind": "emoji", "text": _emoji(rng)})
        docs.append({"kind": "mixed", "text": _mixed(rng)})
        docs.append({"kind": "whitespace", "text": _whitespace(rng)})
    return docs


def main() -> None:
    out = Path(__file__).with_name("corpus.jsonl")
    lines = [json.dumps(doc, ensure_ascii=False) for doc in build()]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    print(f"wrote {len(lines)} documents, {out.stat().st_size:,} bytes to {out}")


if __name__ == "__main__":
    main()
