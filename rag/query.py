"""Question analysis by rules over the question's wording: the expected answer type, the unit asked for,
time and source qualifiers, key terms and named entities; and resolution of short follow-up questions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from rag.figures import Quantity, extract_figures
from rag.lexical import tokenize
from rag.types import Turn

__all__ = ["QueryAnalysis", "analyze", "resolve_followup", "expand_for_retrieval", "NUMERIC_TYPES"]

NUMERIC_TYPES = frozenset({"money", "percent", "count", "year", "date", "measure", "duration"})
UNKNOWN_NAME_CHARS = 3  # an unglossed CJK run this long is taken for a name the sources must contain
ENTITY_TYPES = frozenset({"person", "organization", "place", "list"})
OWNED_TYPES = frozenset({"money", "percent", "count"})  # figures that belong to someone: "X's budget"


@dataclass(frozen=True, slots=True)
class QueryAnalysis:
    """What a question asks for. `terms` are stemmed key terms (CJK words translated where known),
    `entities` lower-cased names with their aliases, `unknown` CJK words with no English gloss."""

    question: str
    answer_type: str  # money|percent|count|year|date|measure|duration|person|organization|place|list|explanation
    unit: str | None  # ISO currency, "%", "nm", "count", "year", "date", ...
    qualifiers: frozenset[str]  # annual, previous, cumulative, total, published, future, change
    years: tuple[tuple[str, int], ...]  # ("since", 2021), ("by", 2029), ("in", 2025)
    source_terms: tuple[str, ...]  # stems after "according to ..." (publisher, outlet)
    source_months: tuple[int, ...]  # months named as the source ("the November report")
    terms: tuple[str, ...]
    entities: tuple[tuple[str, ...], ...]  # each entity as its alias forms, lower-case
    count_nouns: tuple[str, ...]  # stems of what is counted ("how many companies" -> "compani")
    unknown: tuple[str, ...]
    kana: tuple[str, ...]  # consonant skeletons of katakana words, matched against Latin words
    rate_subject: tuple[str, ...]  # "what interest rate" -> stems of "interest" (the rate must be of that)
    purpose: tuple[str, ...]  # "spend on the police force" -> stems of what the money is for
    figures: tuple[Quantity, ...]  # figures the question itself names (never the answer)
    lang: str
    owners: tuple[tuple[str, ...], ...] = ()  # entities the asked figure belongs to ("X's budget", "did X spend")
    properties: tuple[frozenset[str], ...] = ()  # measured properties asked for, each as its synonym stems
    slot: str | None = None  # the preposition the asked name follows: "send prototypes to?" -> "to"
    context: tuple[str, ...] = ()  # stems of a preamble before the interrogative sentence (weighted lower)
    descriptors: tuple[tuple[str, ...], ...] = ()  # entities used as "<Name>-led" modifiers of the subject
    agents: tuple[tuple[str, ...], ...] = ()  # owners asked as the spender: "how much did X invest"


# --- vocabularies (general language, never a particular corpus) -----------------------------------------

_CURRENCY_WORDS = [
    (r"u\.?s\.?\s*dollars?|usd|us\$|american dollars?|dollars?|美元|美金|米ドル|ドル", "USD"),
    (r"japanese yen|yen|jpy|日元|日圆|円", "JPY"), (r"euros?|eur|欧元|ユーロ", "EUR"),
    (r"yuan|renminbi|rmb|cny|人民币|人民元", "CNY"), (r"pounds?|sterling|gbp|英镑|ポンド", "GBP"),
    (r"taiwan(?:ese)? dollars?|twd|nt\$|新台币|台币", "TWD"), (r"korean won|krw|韩元|ウォン", "KRW"),
]
_CURRENCY_RES = [(re.compile(rf"(?<![a-z])(?:{p})(?![a-z])", re.I), c) for p, c in _CURRENCY_WORDS]
_MEASURE_WORDS = [(re.compile(r"nanomet(?:er|re)s?|\bnm\b|纳米|ナノ", re.I), "nm"),
                  (re.compile(r"gigawatts?|\bGW\b", re.I), "GW"), (re.compile(r"megawatts?|\bMW\b", re.I), "MW"),
                  (re.compile(r"kilomet(?:er|re)s?|\bkm\b", re.I), "km"),
                  (re.compile(r"square met(?:er|re)s?", re.I), "m2"), (re.compile(r"tonnes?|tons", re.I), "tonne")]

_PERSON_NOUNS = ("person", "minister", "president", "ceo", "executive", "chairman", "chairwoman", "chair",
                 "founder", "official", "negotiator", "analyst", "spokesperson", "spokesman", "director",
                 "leader", "mayor", "governor", "premier", "secretary", "economist", "manager", "head",
                 "chief", "author", "reporter", "journalist", "engineer", "scientist", "lawmaker", "senator")
_ORG_NOUNS = ("company", "firm", "corporation", "carmaker", "automaker", "chipmaker", "startup", "outlet",
              "newspaper", "publication", "agency", "ministry", "department", "bank", "lender", "insurer",
              "organization", "organisation", "institution", "institute", "customer", "client", "group",
              "party", "government", "university", "body", "manufacturer", "maker", "foundry", "supplier",
              "investor", "fund", "consortium", "association", "partner", "rival", "competitor", "team",
              "club", "contractor", "developer", "operator", "airline", "retailer", "brand", "union",
              "council", "authority", "regulator", "exchange", "broker", "media", "publisher", "business",
              "entity", "alliance", "coalition", "committee", "court", "school", "hospital", "buyer",
              "seller", "owner", "sponsor", "vendor", "specialist", "giant", "provider", "venture")
_PLACE_NOUNS = ("country", "countries", "city", "cities", "region", "state", "prefecture", "province",
                "nation", "place", "continent", "district", "town", "site", "location", "area", "port",
                "county", "island", "neighborhood", "neighbourhood", "ward", "capital")
_MONEY_NOUNS = frozenset(tokenize(
    "budget subsidy subsidies funding fund investment cost price amount sum value worth spending allocation "
    "package pledge revenue sales profit loss deficit debt bill fee salary wage grant loan money support "
    "financing capital expenditure outlay contribution payment compensation relief donation tax income "
    "earnings valuation"))
_AUX = frozenset("is are was were does do did has have had will would can could should may might must "
                 "be been being get gets got saw see".split())
_QUESTION_STOP = frozenset(tokenize(
    "how much many what which who whom whose when where why whats roughly approximately about exactly "
    "total overall combined figure number amount sum value percent percentage share portion proportion "
    "rate year years date day month time big large size per cent please tell me according report article "
    "story piece source sources say said states stated expected supposed plan plans planned will would "
    "does did do is are was were be been get gets got converted convert terms so far already annual annually "
    "yearly every each previous previously last before prior earlier since total overall combined now "
    "has have had it its they their them this that these those there here which also just could should "
    "might must can may make made put goes go going come new "
    "dollar dollars yen euro euros yuan usd jpy nanometer nanometers nanometre nanometres nm percent")) | {"s", "'s"}

_EN_AMOUNT_WORDS = re.compile(r"\bhow (?:much|big|large)\b|\bwhat (?:sum|amount|value)\b|\bworth\b|\bcost\b|"
                              r"\bhow many (?:dollars|yen|euros|yuan|pounds)\b|\bdollar (?:value|terms|amount)\b",
                              re.I)
_CJK_AMOUNT_WORDS = re.compile(r"いくら|何円|何億|何兆|何ドル|金額|总额|総額|多少(?:钱|资金|日元|美元|预算|补贴|投资|经费|元)|"
                               r"多少亿|多大规模|规模")
_PERCENT_WORDS = re.compile(r"\bpercent(?:age)?\b|%|％|\bcompound\b|"
                            r"\bwhat (?:share|proportion|portion|fraction|rate|yield|cut|stake)\b|\b(?:cut|stake|portion) of\b|"
                            r"\bgrowth rate\b|\bcagr\b|\binterest rate\b|\bshare of\b|\brate\b|百分|比例|比率|"
                            r"割合|何%|何％|何パーセント|率", re.I)
_COUNT_EN = re.compile(r"\bhow many\b|\bnumber of\b|\bcount of\b", re.I)
_COUNT_CJK = re.compile(r"(?:多少|几)(?:家|个|名|人|位|所|座|台|辆|项|件|只|种|次|款|间|条|国)|何(?:社|人|件|台|個|カ国|か国|名)|いくつ")
_YEAR_WORDS = re.compile(r"\b(?:what|which) year\b|\bin what year\b|哪一?年|何年", re.I)
_DATE_WORDS = re.compile(r"\bwhen\b|\b(?:what|which) (?:date|day|month)\b|\bby when\b|\bhow soon\b|"
                         r"哪天|哪一天|什么时候|何时|何日|いつ|日付", re.I)
_WHY_WORDS = re.compile(r"\bwhy\b|\bhow come\b|\bfor what reason\b|\bwhat (?:is|was) the reason\b|为什么|为何|"
                        r"なぜ|どうして|理由", re.I)
_PUBLISHED = re.compile(r"\bpublish(?:ed|ing)?\b|\b(?:story|article|piece|report|news item|post|op-ed|column)\b.*"
                        r"\b(?:come out|came out|released?|run|ran|posted|printed|dated|appear(?:ed)?)\b|"
                        r"发布|发表|刊登|刊发|掲載|公開|配信|発行", re.I)
_WHO = re.compile(r"\bwho(?:m)?\b|谁|誰|哪位", re.I)
_WHOSE = re.compile(r"\bwhose\b", re.I)
_WHERE = re.compile(r"\bwhere\b|哪里|哪儿|哪个国家|どこ|どの国", re.I)
_WHICH = re.compile(r"\b(?:which|what)\s+((?:[\w'-]+\s*){1,5})", re.I)
_NOUN_STOP = _AUX | frozenset("to in of for on with from behind by at as that who which belong belongs make makes "
                              "stop stopped lead leads run runs own owns".split())
_LIST_WORDS = re.compile(r"\b(?:list|name (?:the|all)|what are the|who are the|which are the)\b", re.I)
_NAME_THE = re.compile(r"\bname\s+the\s+", re.I)  # "name the X startup": X's noun decides one or many
_CJK_ORG = re.compile(r"哪家|哪个公司|哪些公司|どの企業|どの会社|どこの会社|どの組織|"
                      r"(?:機関|机构|機構|会社|企業|公司|銀行|银行|団体|团体)(?:は|が|是)?(?:どこ|哪里|哪个|哪家)")
_CJK_PERSON = re.compile(r"谁|誰|哪位")

_QUAL_PATTERNS = {
    "annual": re.compile(r"\b(?:annual(?:ly)?|yearly|per year|a year|each year|every year|per annum|year-on-year|"
                         r"year-over-year)\b|每年|毎年|年间|年間", re.I),
    "previous": re.compile(r"\b(?:previous(?:ly)?|prior|before(?: that| the increase| it was)?|earlier|"
                           r"last year(?:'s)?|the year before|former(?:ly)?|initial(?:ly)?|original(?:ly)?|"
                           r"used to|had been)\b|此前|之前|去年|上一年|以前|前年|昨年|従来|当初|前回", re.I),
    "cumulative": re.compile(r"\b(?:so far|to date|in total|cumulative(?:ly)?|altogether|already|thus far|"
                             r"up to now|all told|since\s+(?:the\s+)?\d{4})\b|累计|迄今|至今|以来|累計|これまで|"
                             r"今まで|以降", re.I),
    "total": re.compile(r"\b(?:total|overall|combined|entire|whole|all)\b|总额|总共|総額|合計|全体", re.I),
    "future": re.compile(r"\b(?:will|forecast|projected|expected|upcoming|coming|next|plans?|planned|"
                         r"by\s+\d{4})\b|计划|将|予定|来年|来年度|今後", re.I),
}
_CJK_SINCE_YEAR = re.compile(r"(?:自|从)\s*(\d{4})\s*年|(\d{4})\s*年\S{0,20}?(?:以来|以降|起)")
_YEAR_REL = re.compile(r"\b(since|by|in|from|after|before|until|through|during|for|of)\s+(?:fiscal\s+|the\s+)?"
                       r"(?:year\s+)?(\d{4})\b", re.I)
_SOURCE = re.compile(r"\b(?:according to|as reported by|as per|per|reported by|in)\s+(?:the\s+)?"
                     r"([\w .'&-]{2,60}?)\s+(?:report|article|story|piece|coverage|analysis)\b|"
                     r"\baccording to\s+(?:the\s+)?([\w .'&-]{2,60}?)(?:[,?.]|$)", re.I)
_MONTHS = {m: i + 1 for i, m in enumerate("january february march april may june july august september "
                                          "october november december".split())}
_CAPS = re.compile(r"(?<![\w'])(?:[A-Z][\w&.-]*[A-Za-z\d])(?:\s+(?:of|and|for|de|the|&)?\s*[A-Z][\w&.-]*[A-Za-z\d])*")
_ASCII_IN_CJK = re.compile(r"[A-Za-z][A-Za-z0-9&.-]*")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_HIRAGANA = re.compile(r"[\u3040-\u309f]+")  # Japanese inflections and particles: never part of a name
_KATAKANA = re.compile(r"[\u30a0-\u30ffー]{2,}")
_NOT_ENTITY = frozenset(
    "the a an in on at of for by to and or what which who whom whose when where why how is are was were "
    "does do did has have had will would can could should may might besides apart since after before "
    "according converted roughly approximately about if by that this these those there it its their "
    "and also but then so as from with into name list tell give identify".split()) | set(_MONTHS)

# Country and bloc names with their demonyms, capitals and short forms: one place said many ways.
_PLACE_ALIASES = [
    ("us", "u.s.", "usa", "u.s.a.", "united states", "america", "american", "americans", "washington"),
    ("japan", "japanese", "tokyo"), ("china", "chinese", "beijing", "prc"),
    ("uk", "u.k.", "britain", "british", "united kingdom", "london"), ("korea", "korean", "seoul"),
    ("taiwan", "taiwanese", "taipei"), ("eu", "e.u.", "europe", "european", "brussels", "european union"),
    ("germany", "german", "berlin"), ("france", "french", "paris"), ("india", "indian", "new delhi"),
    ("netherlands", "dutch", "holland", "amsterdam"), ("canada", "canadian", "ottawa"),
    ("australia", "australian", "canberra"), ("russia", "russian", "moscow"), ("italy", "italian", "rome"),
    ("spain", "spanish", "madrid"), ("singapore", "singaporean"), ("vietnam", "vietnamese", "hanoi"),
]
_ALIAS_OF = {form: group for group in _PLACE_ALIASES for form in group}
_GENERIC_PLACES = frozenset(f for g in _PLACE_ALIASES for f in g)
_DEMONYMS = frozenset(f for g in _PLACE_ALIASES for f in g if re.search(r"(?:an|ans|ese|ish|ch|ean)$", f)) - {
    "taiwan", "japan", "spain"}

# A small general bilingual glossary (zh/ja -> English news vocabulary), longest match first.
_GLOSSARY_RAW = """
半导体=semiconductor 半導体=semiconductor 芯片=chip チップ=chip 晶圆=wafer ウエハー=wafer 人工智能=AI
公司=company 企业=company 企業=company 会社=company 社=company 集团=group 政府=government 国家=national
执政党=ruling party 与党=ruling party 政党=party 首相=prime minister 总理=prime minister 部长=minister
大臣=minister 省=ministry 部=ministry 经济=economy 経済=economy 产业=industry 産業=industry 财务=finance 財務=finance
预算=budget 予算=budget 补充预算=supplementary budget 補正予算=supplementary budget 补贴=subsidy 補助金=subsidy
补助=subsidy 助成=subsidy 资金=funds 資金=funds 资助=funding 支持=support 支援=support 投资=investment 投資=investment
出资=equity investment 出資=equity investment 直接=direct 贷款=loans 融資=loans 担保=guarantees 保证=guarantees
计划=plan 計画=plan 予定=plan 实现=achieve 達成=achieve 战略=strategy 戦略=strategy 项目=project プロジェクト=project 研究=research 开发=development
開発=development 联合=joint 共同=joint 合作=collaboration 協力=collaboration 日美=japan us 日米=japan us
美日=us japan 日本=japan 美国=us 米国=us アメリカ=us 中国=china 韩国=korea 韓国=korea 台湾=taiwan 欧洲=europe
欧州=europe 荷兰=netherlands オランダ=netherlands 东京=tokyo 東京=tokyo 量产=mass production 量産=mass production
生产=production 生産=production 制造=manufacturing 製造=manufacturing 工厂=plant factory 工場=plant factory
纳米=nanometer ナノ=nanometer 成立=founded established 设立=established 設立=established founded 创立=founded
发布=published 発表=announced 报道=report 報道=report 记事=article 記事=article 文章=article 消息=news
每年=annual 毎年=annual 年度=fiscal year 来年度=next fiscal year 明年=next year 去年=last year 今年=this year
总额=total 総額=total 合计=total 合計=total 增长=growth 増加=increase 成長=growth 市场=market 市場=market
规模=size 規模=size 比例=share 割合=share 比率=ratio 利润=profits 利益=profits 关税=tariff 関税=tariff
贸易=trade 貿易=trade 协议=agreement 協定=agreement 合意=agreement 谈判=negotiations 交渉=negotiations
员工=employees 従業員=employees 社員=employees 职员=employees 工人=workers 人数=number people
筹集=raise 筹措=raise 調達=raise 拨款=allocate 分配=allocation 配分=allocation 充てる=allocate 充て=allocate
组成=comprise 構成=comprise 港口=port 港湾=port 获得=receive 得到=receive 受け取=receive 获=receive 投入=invest 砸=spend 支出=spending 花费=spend 費用=cost
成本=cost 价格=price 価格=price 材料=materials 原材料=raw materials 供应链=supply chain サプライチェーン=supply chain
确保=securing 確保=securing 基础设施=infrastructure インフラ=infrastructure 数据中心=data center
汽车=automotive car 自動車=automotive car 自动驾驶=autonomous driving 自動運転=autonomous driving
初创=startup 新興=startup 客户=customer 顧客=customer 原型=prototype 試作=prototype 样品=samples
设备=equipment 装置=equipment 技术=technology 技術=technology 先进=advanced 先端=advanced 最先端=advanced
产业=industry 産業=industry 行业=industry 业界=industry 業界=industry 经济=economy 経済=economy
出口=export 輸出=export 进口=import 輸入=import 制裁=sanctions 禁令=ban 禁止=ban 规定=regulations 規制=regulations
领导=lead 主导=lead 主導=lead 竞争=competition 競争=competition 对手=rival ライバル=rival 城市=city 都市=city
市=city 体育场=stadium スタジアム=stadium 球场=stadium 建设=construction 建設=construction 完工=completion
完成=completion 开业=opening 開業=opening 座位=seats 座席=seats 收入=revenue 収入=revenue 营收=revenue
売上=sales 销售=sales 季度=quarter 四半期=quarter 净利润=net profit 純利益=net profit 税=tax 税收=tax revenue
以来=since 确立=established 確立=established 策定=established 振兴=revival 振興=revival 复兴=revival
拨付=allocate 割り当て=allocate 割当=allocate 投じ=invest 领域=sector 分野=sector 国内=domestic 本地=local
当地=local 地元=local 电池=battery 電池=battery 氢能=hydrogen 氢=hydrogen 水素=hydrogen 海港=harbour port
良率=yield 歩留まり=yield 产能=capacity 生産能力=capacity 成员=members 会员=members 加盟=members
交付=deliver 供应=supply 供給=supply 估值=valuation 价值=worth 価値=worth
金融机构=financial institution 金融機関=financial institution 实施=implementation 実施=implementation
安排=allocate パッケージ=package 一揽子=package 计划包=package
学校=school 医院=hospital 病院=hospital 交通=transit 铁路=rail 鉄道=rail 公园=park 公園=park 住房=housing 住宅=housing
"""
# Names often written in Chinese or Japanese characters in news (companies, places), with their Latin forms
# separated by "|": a question naming one must find it in the sources, like an English name.
_CJK_NAMES_RAW = """
台积电=TSMC|Taiwan Semiconductor 台積電=TSMC|Taiwan Semiconductor 熊本=Kumamoto 丰田=Toyota 豊田=Toyota
索尼=Sony 本田=Honda 日产=Nissan 日産=Nissan 软银=SoftBank 软银集团=SoftBank 瑞萨=Renesas 英伟达=Nvidia
三星=Samsung 英特尔=Intel 美光=Micron 华为=Huawei 阿里巴巴=Alibaba 铠侠=Kioxia 博通=Broadcom 苹果=Apple
微软=Microsoft 谷歌=Google 亚马逊=Amazon 特斯拉=Tesla 高通=Qualcomm 阿斯麦=ASML 东京电子=Tokyo Electron
東京エレクトロン=Tokyo Electron 北海道=Hokkaido 千岁=Chitose 千歳=Chitose 大阪=Osaka 九州=Kyushu 横滨=Yokohama
横浜=Yokohama 名古屋=Nagoya 福冈=Fukuoka 福岡=Fukuoka 上海=Shanghai 深圳=Shenzhen 香港=Hong Kong 首尔=Seoul
经产省=METI|Ministry of Economy 経産省=METI|Ministry of Economy 经济产业省=METI|Ministry of Economy
経済産業省=METI|Ministry of Economy 新竹=Hsinchu 亚利桑那=Arizona 德州=Texas 德克萨斯=Texas 加州=California 德累斯顿=Dresden 日经=Nikkei 日経=Nikkei
"""
_CJK_NAMES: dict[str, tuple[str, ...]] = {}
for _m in re.finditer(r"(\S+?)=([^=]+?)(?=\s+\S+=|\s*$)", _CJK_NAMES_RAW.strip()):
    _CJK_NAMES[_m.group(1)] = tuple(f.strip().lower() for f in _m.group(2).split("|"))
_GLOSSARY: dict[str, tuple[str, ...]] = {k: tuple(v[0].split()) for k, v in _CJK_NAMES.items()}
for _line in _GLOSSARY_RAW.strip().splitlines():
    for _m in re.finditer(r"(\S+?)=([a-zA-Z][a-zA-Z ]*?)(?=\s+\S+=|\s*$)", _line):
        _GLOSSARY[_m.group(1)] = tuple(_m.group(2).split())
_GLOSS_KEYS = sorted(_GLOSSARY, key=len, reverse=True)
_GLOSS_RE = re.compile("|".join(map(re.escape, _GLOSS_KEYS)))
# CJK function words and question words that carry no content.
_CURRENCY_CJK = re.compile(r"日元|日圆|美元|美金|米ドル|ドル|欧元|ユーロ|人民币|人民元|円|元")
_CJK_FILLER = re.compile(r"一年|うち|[自已向年篇说的了吗呢吧是在和与及或将把被对于从到为由里给系多少几哪什么怎样如何个家些这那其之也都还又就会能"
                         r"はがをにでともへやのかなだですますたりれるられるしてどれくらいいつ何どの誰こそあ、。？！・]+")

_KANA = {
    "ア": "a", "イ": "i", "ウ": "u", "エ": "e", "オ": "o", "カ": "ka", "キ": "ki", "ク": "ku", "ケ": "ke",
    "コ": "ko", "ガ": "ga", "ギ": "gi", "グ": "gu", "ゲ": "ge", "ゴ": "go", "サ": "sa", "シ": "shi", "ス": "su",
    "セ": "se", "ソ": "so", "ザ": "za", "ジ": "ji", "ズ": "zu", "ゼ": "ze", "ゾ": "zo", "タ": "ta", "チ": "chi",
    "ツ": "tsu", "テ": "te", "ト": "to", "ダ": "da", "ヂ": "ji", "ヅ": "zu", "デ": "de", "ド": "do", "ナ": "na",
    "ニ": "ni", "ヌ": "nu", "ネ": "ne", "ノ": "no", "ハ": "ha", "ヒ": "hi", "フ": "fu", "ヘ": "he", "ホ": "ho",
    "バ": "ba", "ビ": "bi", "ブ": "bu", "ベ": "be", "ボ": "bo", "パ": "pa", "ピ": "pi", "プ": "pu", "ペ": "pe",
    "ポ": "po", "マ": "ma", "ミ": "mi", "ム": "mu", "メ": "me", "モ": "mo", "ヤ": "ya", "ユ": "yu", "ヨ": "yo",
    "ラ": "ra", "リ": "ri", "ル": "ru", "レ": "re", "ロ": "ro", "ワ": "wa", "ヲ": "o", "ン": "n", "ヴ": "v",
    "ァ": "a", "ィ": "i", "ゥ": "u", "ェ": "e", "ォ": "o", "ャ": "ya", "ュ": "yu", "ョ": "yo", "ッ": "", "ー": "",
}


# General near-synonyms of news English, folded to one stem so paraphrased questions still match.
_SYNONYM_GROUPS = [
    "global worldwide", "annual yearly", "domestic homegrown", "automaker carmaker", "company firm",
    "challenge hurdle obstacle", "nation country", "raise lift increase boost", "spending expenditure outlay",
    "allocate earmark", "plant factory facility", "build construct", "chief head", "goal aim target",
    "stadium arena", "finish complete", "revenue turnover", "forecast projected expected",
    "cost price expense require need", "lead led", "supply deliver send ship", "worth value valued valuation",
    "growth grow cagr", "fund funding money financing", "rise rose rising climb jump surge soar",
]
_CANON: dict[str, str] = {}
for _group in _SYNONYM_GROUPS:
    _stems = tokenize(_group)
    for _st in _stems[1:]:
        _CANON[_st] = _stems[0]


# Question phrasings news text words otherwise; applied to the question's terms only (in articles "bill"
# is as often a law as an amount).
_QUESTION_PHRASES = [
    (re.compile(r"\b(?:high[- ])?volume (production|manufacturing)\b", re.I), r"mass \1"),
    (re.compile(r"\bprice[- ]tag\b", re.I), "cost"),
    (re.compile(r"(?<!budget )(?<!spending )(?<!supplementary )\bbill (for|of)\b", re.I), r"cost \1"),
]


def paraphrase(text: str) -> str:
    """The question's wording mapped to the words news articles use for the same thing."""
    for rx, repl in _QUESTION_PHRASES:
        text = rx.sub(repl, text)
    return text


def canonical(stem: str) -> str:
    """One stem for a group of near-synonyms ("worldwid" -> "global")."""
    return _CANON.get(stem, stem)


def kana_skeleton(word: str) -> str:
    """Consonant skeleton of a katakana word's romanization ("ラピダス" -> "rpds"), to match Latin names."""
    roman = "".join(_KANA.get(ch, "") for ch in word)
    return latin_skeleton(roman.replace("shi", "s").replace("chi", "c").replace("tsu", "t").replace("fu", "f"))


def latin_skeleton(word: str) -> str:
    """Consonants of a Latin word with doubles collapsed ("Rapidus" -> "rpds"), for kana matching."""
    cons = re.sub(r"[^bcdfghjklmnpqrstvwxz]", "", word.lower().replace("ph", "f").replace("th", "t")
                  .replace("ck", "k").replace("c", "k"))
    return re.sub(r"(.)\1+", r"\1", cons)


# --- analysis ---------------------------------------------------------------------------------------------

def _lang(text: str) -> str:
    if re.search(r"[\u3040-\u30ff]", text):
        return "ja"
    if _CJK_RUN.search(text):
        return "zh"
    return "en"


def _outside(text: str, figures: Sequence[Quantity]) -> str:
    """The text with the question's own figures blanked out (their units are not the unit asked for)."""
    chars = list(text)
    for q in figures:
        chars[q.start:q.end] = " " * (q.end - q.start)
    return "".join(chars)


def _unit_asked(text: str) -> str | None:
    best: tuple[int, str] | None = None
    for rx, code in _CURRENCY_RES:
        for m in rx.finditer(text):
            if best is None or m.start() > best[0]:
                best = (m.start(), code)  # the last currency named wins ("... in yen? and in dollars?")
    return best[1] if best else None


def _which_noun(text: str) -> tuple[str, bool] | None:
    """The category named after "which/what" ("which carmakers" -> ("carmaker", plural=True))."""
    for m in _WHICH.finditer(text):
        words = []
        for w in re.findall(r"[\w'-]+", m.group(1).lower()):
            if w in _NOUN_STOP:
                break
            words.append(w)
        for w in reversed(words):
            base = w[:-3] + "y" if w.endswith("ies") else w[:-1] if w.endswith("s") and not w.endswith("ss") else w
            for category, nouns in (("person", _PERSON_NOUNS), ("organization", _ORG_NOUNS),
                                    ("place", _PLACE_NOUNS)):
                if base in nouns or w in nouns:
                    return category, (w != base and category != "place") or w in ("countries", "cities")
        last = words[-1] if words else ""
        if last.endswith("s") and not last.endswith("ss") and len(last) > 3:
            return "list", True
    return None


def _answer_type(text: str, outside: str, lang: str) -> tuple[str, str | None]:
    low = outside.lower()
    measure = next((u for rx, u in _MEASURE_WORDS if rx.search(outside)), None)
    currency = _unit_asked(outside)
    if _WHY_WORDS.search(outside):
        return "explanation", None
    if _PUBLISHED.search(outside) and (_DATE_WORDS.search(outside) or _YEAR_WORDS.search(outside)):
        return "date", "date"
    if _YEAR_WORDS.search(outside):
        return "year", "year"
    if _DATE_WORDS.search(outside):
        return "date", "date"
    if _PERCENT_WORDS.search(outside) and not re.search(r"\bhow many (?!percent)", low):
        return "percent", "%"
    if measure and re.search(r"how (?:many|small|big|large|wide|long)|what (?:size|node)|in nanomet|几|多少|何", low
                             ) or measure and re.search(r"\bnode\b|\bprocess\b", low):
        return "measure", measure
    if re.search(r"\bnode\b", low) and re.search(r"\b(?:what|which)\b", low):
        return "measure", "nm"
    if currency or _EN_AMOUNT_WORDS.search(outside) or _CJK_AMOUNT_WORDS.search(outside):
        if re.search(r"\bhow many (?:years|months|weeks|days)\b", low):
            return "duration", None
        return "money", currency
    if _COUNT_EN.search(outside) or _COUNT_CJK.search(outside):
        if re.search(r"\bhow many (?:years|months|weeks|days|hours)\b", low):
            return "duration", None
        return "count", "count"
    if re.search(r"多少|几|どれくらい|どのくらい", outside):
        money_terms = set(tokenize(" ".join(w for k in _GLOSS_RE.findall(outside) for w in _GLOSSARY[k])))
        return ("money", currency) if money_terms & _MONEY_NOUNS else ("count", "count")
    if _WHOSE.search(outside):
        return "organization", None
    which = _which_noun(_NAME_THE.sub("which ", outside))
    if (_LIST_WORDS.search(outside) and not (which and _NAME_THE.search(outside))) or (which and which[1]):
        return "list", None
    if which:
        return which[0], None
    if _WHO.search(outside) or _CJK_PERSON.search(outside):
        role = re.search(r"\bwho\s+(?:is|are|was|were)\s+(?:[\w']+\s+){0,4}?(\w+?)s?\b(?:\s+(?:in|of|for|to|on)\b|\s*\?)",
                         low)
        if role and role.group(1) in _ORG_NOUNS:
            return "organization", None
        return "person", None
    if _CJK_ORG.search(outside):
        return "organization", None
    if _WHERE.search(outside):
        return "place", None
    cued = _cue_type(low, currency)
    if cued:
        return cued
    head = re.search(r"\b(?:what|which)\s+(?:\w+\s+)?(\w+)\s+(?:did|does|do|will|would|has|have|is|was)\b", low)
    if head and set(tokenize(head.group(1))) & _MONEY_NOUNS:
        return "money", currency
    if re.search(r"\b(?:what|how)\s+(?:is|was|are|were)\s+(?:the\s+)?(?:\w+\s+){0,3}?(\w+)\b", low):
        head = set(tokenize(low)) & _MONEY_NOUNS
        if head and re.search(r"\b(?:what|how) (?:is|was|are|were|will|would|could)\b", low) and not re.search(
                r"\b(?:what|which) (?:\w+ ){0,2}(?:approach|kind|type|way|method|design|technology|role|goal|"
                r"aim|purpose|focus|hurdle|risk|problem|challenge)\b", low):
            return "money", currency
    return "explanation", None


# Cue nouns naming a measured amount: a terse or wh-less question ("budget: amount earmarked for X?") that
# uses one asks for a figure, never for an explanation.
_MONEY_CUE = re.compile(r"\b(?:amount|sum|earmarked|allocated|set aside|funding|budgeted)\b")
_SIZE_CUE = re.compile(r"\b(?:capacity|size|number|headcount)\b")
_MONEY_SIZED = re.compile(r"\b(?:market|budget|economy|fund|package|deal|investment|industry)\b")


def _cue_type(low: str, currency: str | None) -> tuple[str, str | None] | None:
    """The numeric answer type a cue noun sets when no interrogative word did."""
    if _MONEY_CUE.search(low):
        return "money", currency
    if _SIZE_CUE.search(low):
        return ("money", currency) if _MONEY_SIZED.search(low) else ("count", "count")
    return None


_COUNT_STOP = _NOUN_STOP | frozenset("a an per each every work are comprise comprises consist consists "
                                     "constitute form join joined".split())


def _count_nouns(text: str) -> tuple[str, ...]:
    m = re.search(r"\bhow many\s+((?:[\w-]+\s*){1,4})", text, re.I)
    if m:
        words = []
        for w in re.findall(r"[\w-]+", m.group(1)):
            if w.lower() in _COUNT_STOP:
                break  # "how many companies belong to X": the counted noun ends at the verb
            words.append(w)
        return tuple(tokenize(" ".join(words)))
    m = re.search(r"\bnumber of\s+((?:[\w-]+\s+){0,2}[\w-]+)", text, re.I)
    if m:
        return tuple(tokenize(m.group(1)))
    m = re.search(r"(?:多少|几)[家个名人位所座台辆项件只种次款间条]?([\u4e00-\u9fff]{1,4})|何[社人件台個名]|"
                  r"([\u4e00-\u9fff\u30a0-\u30ff]{2,5})は何[人社件台個名]", text)
    if m:
        word = m.group(1) or m.group(2) or ""
        gloss = [w for k in _GLOSS_RE.findall(word) for w in _GLOSSARY[k]]
        if re.search(r"何人|多少人|几人|多少名", text):
            gloss += ["people", "employees", "workers", "staff"]
        if re.search(r"何社|多少家|几家", text):
            gloss += ["companies", "firms"]
        return tuple(tokenize(" ".join(gloss))) or (word,)
    return ()


_DESCRIPTOR_SUFFIX = (r"-(?:led|backed|owned|based|run|funded|controlled|headed|linked|affiliated|sponsored|"
                      r"operated|made|built|born|focused)")
_DESCRIPTOR = re.compile(_DESCRIPTOR_SUFFIX + "$", re.I)


def _add_entity(found: list[tuple[str, ...]], phrase: str) -> None:
    low = _DESCRIPTOR.sub("", re.sub(r"'s$|’s$", "", phrase.lower())).strip(" .-")
    if not low or low in _DEMONYMS:
        return  # "its American customer": an adjective, not a place the answer must mention
    if low in _ALIAS_OF:
        found.append(_ALIAS_OF[low])
        return
    parts = re.split(r"[\s-]+", low)
    if len(parts) > 1 and any(p in _ALIAS_OF for p in parts):  # "US-Japan", "Chinese GPU"
        rest = [p for p in parts if p not in _ALIAS_OF]
        for p in parts:
            if p in _ALIAS_OF and p not in _DEMONYMS:
                found.append(_ALIAS_OF[p])
        if rest and len(" ".join(rest)) > 2:
            found.append((" ".join(rest),))
        return
    found.append((low,))


_TIME_WORDS = frozenset(tokenize("fiscal year years month months quarter coming next current upcoming this last "
                                 "annual annually period budget"))


# Measured properties a question can ask for, each with the words articles state it with: a figure answers
# such a question only when its sentence names the property (a yield question is not answered by a budget).
_PROPERTY_WORDS = [  # (words asking for the property, words stating it)
    ("yield yields", "yield yields"),
    ("revenue revenues turnover", "revenue revenues turnover sales"),
    ("sales", "sales revenue revenues turnover"),
    ("profit profits earnings", "profit profits earnings income"),
    ("margin margins", "margin margins"),
    ("headcount workforce", "headcount workforce employees staff employs"),
    ("price prices", "price prices priced cost costs costing"),
    ("capacity output throughput", "capacity output throughput produce production manufacture make build turn"),
    ("speed speeds", "speed speeds fast faster"),
    ("valuation", "valuation valued value worth"),
    ("population", "population residents inhabitants people"),
    ("salary salaries wage wages", "salary salaries wage wages pay paid earn earns"),
    ("dividend dividends", "dividend dividends payout"),
    ("debt debts", "debt debts borrowing borrowed loans"),
    ("deficit", "deficit shortfall gap"),
    ("rate", "rate rates"),
    ("share stake", "share shares stake"),
]
_PROPERTIES = [(frozenset(tokenize(asked)), frozenset(canonical(s) for s in tokenize(said)))
               for asked, said in _PROPERTY_WORDS]
_STATED_BY_PERCENT = frozenset(tokenize("rate share stake"))  # a percentage is itself a rate or a share


def _properties(text: str, answer_type: str) -> tuple[frozenset[str], ...]:
    """The measured properties the question asks for, each as the stems a stating sentence would use."""
    words = set(tokenize(text)) - (_STATED_BY_PERCENT if answer_type == "percent" else frozenset())
    sized = (_SIZED_STATED,) if _SIZED.search(text) else ()
    return tuple(said for asked, said in _PROPERTIES if asked & words) + sized


# "what size is X's market": the size of a market is stated with the word market (or industry, sector).
_SIZED = re.compile(r"\bsize\b(?:\W+\w+){0,8}?\W+(?:market|economy|industry|sector)\b|"
                    r"\b(?:market|economy|industry|sector)\s+size\b", re.I)
_SIZED_STATED = frozenset(canonical(s) for s in tokenize("market markets economy industry sector"))
_PROPERTY_STEMS = frozenset(s for asked, _ in _PROPERTIES for s in asked)
_SLOT = re.compile(r"\b(to|from|with|for)\s+(?:which|whom|what)\b|\b(to|from|with|for)\s*[?？]?\s*$", re.I)


_RECIPIENT = re.compile(r"\b(?:which|what)\s+(?:[\w-]+\s+){0,2}?(?:customers?|clients?|buyers?|recipients?|"
                        r"purchasers?)\b|\b(?:receive[sd]?|receiving|gets?|got|obtain(?:s|ed)?|buys?|bought|"
                        r"purchase[sd]?|take delivery)\b", re.I)
_SOURCE_NOUN = re.compile(r"\b(?:which|what)\s+(?:[\w-]+\s+){0,2}?(?:suppliers?|vendors?|providers?)\b", re.I)


def _slot(text: str) -> str | None:
    """The preposition a name question puts its answer after ("to which carmaker", "... send it to?"); a
    question for a customer or buyer asks for the recipient ("supply X to <ORG>"), one for a supplier for
    the source ("parts from <ORG>")."""
    m = _SLOT.search(text)
    if m:
        return (m.group(1) or m.group(2)).lower()
    if _RECIPIENT.search(text):
        return "to"
    return "from" if _SOURCE_NOUN.search(text) else None


_OWNER_AUX = re.compile(r"\b(?:does|do|did|has|have|had|will|would|could|can|should|is|are|was|were|might|may)\s+"
                        r"(?:the\s+)?$")
_OWNED_OF = re.compile(r"\b([a-z]+)\s+of\s+(?:the\s+)?$")


def _is_owner(before: str, after: str) -> bool:
    """A mention is the owner of the asked figure when it is a possessor, the verb's subject or "<amount> of X"."""
    if after.startswith(("'s", "’s")) or _OWNER_AUX.search(before):
        return True
    owned = _OWNED_OF.search(before)
    return owned is not None and bool(set(tokenize(owned.group(1))) & (_MONEY_NOUNS | _PROPERTY_STEMS))


@lru_cache(maxsize=16_384)
def whole_word(form: str) -> re.Pattern[str]:
    """A lower-cased name form as a whole word: no letter or digit on either side."""
    return re.compile(rf"(?<![a-z0-9]){re.escape(form)}(?![a-z0-9])")


def _owners(text: str, entities: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Entities the asked figure belongs to: a possessor ("X's budget"), the subject of the question's verb
    ("how much did X spend", "how many staff does X have") or the owner after "of" ("the budget of X")."""
    low = text.lower()
    return tuple(group for group in entities if any(
        _is_owner(low[:m.start()], low[m.end():])
        for form in group for m in whole_word(form).finditer(low)))


_SPEND_VERB = re.compile(r"\s+(?:[\w-]+\s+){0,2}?(?:invest|spend|spent|pay|paid|contribut|lend|lent|give|gave|"
                         r"provid)\w*\b")
# A growth question asks for the change ("the growth in X"), unless it asks for the level reached.
_CHANGE_ASKED = re.compile(r"\b(?:growth|increase|rise|expansion|jump|surge|hike)\s+(?:in|of)\b", re.I)
_LEVEL_ASKED = re.compile(r"\bto what (?:level|amount|size|total)\b|\bhow (?:big|large) (?:is|was|are|were)\b|"
                          r"\b(?:grow|grew|rise|rose|increase[sd]?|expand(?:ed)?|climb(?:ed)?|jump(?:ed)?)\s+to\b",
                          re.I)


def _agents(text: str, owners: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Owners the question makes the spender ("how much did X invest / pay / lend"): the figure must be
    theirs as agent. Countries are left out: their government or ministries spend for them."""
    low = text.lower()
    return tuple(g for g in owners if not set(g) & _GENERIC_PLACES and any(
        _SPEND_VERB.match(low, m.end()) for f in g for m in whole_word(f).finditer(low)))


def _purpose(text: str) -> tuple[str, ...]:
    m = re.search(r"\b(?:spend|spent|spending|budget(?:ing|ed)?|allocat\w*|earmark\w*|set aside|put\w*|invest\w*|"
                  r"money|funding|funds?|subsid\w*|pay\w*|cost|grant\w*)\s+(?:\w+\s+){0,2}?(?:on|for|into|towards?)\s+"
                  r"([^?.!,]+)", text, re.I)
    if not m:
        return ()
    words = [canonical(t) for t in tokenize(m.group(1)) if t not in _QUESTION_STOP and t not in _TIME_WORDS
             and not t.isdigit()]
    return tuple(dict.fromkeys(words))


def _rate_subject(text: str) -> tuple[str, ...]:
    m = re.search(r"\b([a-z]+)\s+rates?\b", text, re.I)
    if not m or m.group(1).lower() in ("what", "which", "the", "a", "an", "annual", "yearly", "average", "its",
                                       "their", "this", "that"):
        return ()
    return tuple(canonical(t) for t in tokenize(m.group(1)))


def _entities(text: str, lang: str) -> tuple[list[tuple[str, ...]], list[str]]:
    """Named entities (with aliases) and CJK words with no gloss."""
    found: list[tuple[str, ...]] = []
    unknown: list[str] = []
    sentence_start = {m.end() for m in re.finditer(r"^\s*|[.?!]\s+", text)}
    for m in (_CAPS.finditer(text) if lang == "en" else ()):
        words = m.group().strip(".-").split()
        stripped = False
        while words and words[0].lower() in _NOT_ENTITY:
            words, stripped = words[1:], True
        if not words:
            continue
        if m.start() in sentence_start and not stripped and len(words) == 1 and not words[0].isupper():
            continue  # a capitalized first word is usually just the start of the sentence
        _add_entity(found, " ".join(words))
    if lang != "en":
        for m in _ASCII_IN_CJK.finditer(text):
            _add_entity(found, m.group())
        for run in _CJK_RUN.findall(_CURRENCY_CJK.sub(" ", text)):
            rest = run
            for key in _GLOSS_KEYS:
                if key in rest:
                    gloss = " ".join(_GLOSSARY[key])
                    if key in _CJK_NAMES:
                        found.append(_CJK_NAMES[key])
                    elif gloss in _ALIAS_OF:
                        found.append(_ALIAS_OF[gloss])
                    rest = rest.replace(key, " ")
            for kata in _KATAKANA.findall(rest):
                found.append(("kana:" + kana_skeleton(kata),))
                rest = rest.replace(kata, " ")
            for piece in re.split(r"\s+|" + _CJK_FILLER.pattern, _HIRAGANA.sub(" ", rest)):
                piece = piece.strip()
                if len(piece) >= 2:
                    unknown.append(piece)
                if len(piece) >= UNKNOWN_NAME_CHARS:
                    found.append((piece,))  # a long unglossed run is most likely a name: it must be found too
    seen: dict[tuple[str, ...], None] = {}
    for group in found:
        seen.setdefault(group, None)
    return list(seen), unknown


_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]*[A-Z0-9])|(?<=[。！？])\s*|(?<=[.!?;:])\s+(?=(?:and\s+|so\s+|but\s+)?"
                             r"(?:what|how|which|who|whom|whose|when|where|why|in what|by what)\b)", re.I)
_ABBREVIATION = re.compile(r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|Co|Inc|Ltd|Corp|Jr|Sr|vs|No)|\.[A-Z])\.$")
_INTERROGATIVE = re.compile(r"^\W*(?:and\s+|so\s+|but\s+)?(?:in\s+\w+,?\s+)?(?:what|how|which|who|whom|"
                            r"whose|when|where|why|is|are|was|were|does|do|did|has|have|can|could|will|would|should)\b|"
                            r"\b(?:what|how much|how many|which|who|whom|whose|when|where|why)\b", re.I)


def _sentences(text: str) -> list[str]:
    """The question's sentences (and clauses that start a new wh-question after ";" or ":")."""
    parts: list[str] = []
    start = 0
    for m in _SENTENCE_BREAK.finditer(text):
        if m.start() > start and not _ABBREVIATION.search(text[start:m.start()]):
            parts.append(text[start:m.start()])
            start = m.end()
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def split_preamble(text: str) -> tuple[str, str]:
    """(asked, preamble): the interrogative sentence of a multi-sentence question, which fixes the answer type,
    unit and key terms, and the rest, which only adds context ("X happened. In yen, what is Y worth?")."""
    parts = _sentences(text)
    if len(parts) < 2:
        return text, ""
    asked = next((p for p in reversed(parts) if _INTERROGATIVE.search(p)), None)
    if asked is None or len(tokenize(asked)) < 4 or any(re.search(r"[?？]\s*$", p) for p in parts if p is not asked):
        return text, ""  # elliptic ("..., and Japan?") or a chain of questions (a resolved follow-up): keep it whole
    return asked, " ".join(p for p in parts if p is not asked)


def _context_terms(preamble: str, asked: QueryAnalysis) -> tuple[str, ...]:
    """Stems of the preamble's content words (names included) that the interrogative sentence lacks."""
    if not preamble:
        return ()
    have = set(asked.terms) | {canonical(t) for g in asked.entities for f in g for t in tokenize(f)}
    words = [canonical(t) for t in tokenize(paraphrase(preamble)) if t not in _QUESTION_STOP
             and not re.fullmatch(r"[\d.,]+", t)]
    return tuple(dict.fromkeys(w for w in words if w not in have))


def _descriptors(text: str, entities: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Entities the question uses only as a hyphenated modifier ("the Toyota-led association"): they describe
    the subject; they neither own the asked figure nor are counted."""
    low = text.lower()
    return tuple(g for g in entities if any(re.search(rf"(?<![a-z0-9]){re.escape(f)}{_DESCRIPTOR_SUFFIX}\b", low)
                                            for f in g)
                 and not any(re.search(rf"(?<![a-z0-9]){re.escape(f)}(?![a-z0-9-])", low) for f in g))


def _descriptor_terms(text: str, descriptors: Sequence[tuple[str, ...]]) -> set[str]:
    """Stems of the descriptor names and of their "-led" / "-backed" suffixes: context, not key terms."""
    names = {canonical(t) for g in descriptors for f in g for t in tokenize(f)}
    suffixes = {canonical(t) for m in re.finditer(_DESCRIPTOR_SUFFIX + r"\b", text, re.I) for t in tokenize(m.group()[1:])}
    return names | suffixes


@lru_cache(maxsize=4096)
def analyze(question: str) -> QueryAnalysis:
    """Rules over the question's words: answer type, unit, qualifiers, terms and entities. In a question of
    several sentences the interrogative one decides all of these; the others add low-weight context terms."""
    text = " ".join(question.split()).replace("’", "'")
    asked, preamble = split_preamble(text)
    if not preamble:
        return _analyze_sentence(text)
    a = _analyze_sentence(asked)
    return replace(a, context=_context_terms(preamble, a) + a.context)


def _analyze_sentence(text: str) -> QueryAnalysis:
    text = re.sub(r"\b([Ww]hat|[Hh]ow|[Ww]ho|[Ww]here|[Ww]hen)'s\b", r"\1 is", text)
    lang = _lang(text)
    figures = tuple(q for q in extract_figures(text) if q.kind not in ("year",) or not _YEAR_WORDS.search(text))
    outside = _outside(text, [q for q in figures if q.kind != "year"])
    answer_type, unit = _answer_type(text, outside, lang)
    quals = {name for name, rx in _QUAL_PATTERNS.items() if rx.search(outside)}
    if _PUBLISHED.search(outside) and answer_type in ("date", "year"):
        quals.add("published")
    if _CHANGE_ASKED.search(outside) and not _LEVEL_ASKED.search(outside):
        quals.add("change")
    years = tuple((m.group(1).lower(), int(m.group(2))) for m in _YEAR_REL.finditer(text)) + tuple(
        ("since", int(m.group(1) or m.group(2))) for m in _CJK_SINCE_YEAR.finditer(text))
    source_terms: list[str] = []
    source_months: list[int] = []
    for m in _SOURCE.finditer(text):
        phrase = (m.group(1) or m.group(2) or "").lower()
        for w in phrase.split():
            if w in _MONTHS:
                source_months.append(_MONTHS[w])
        source_terms += [t for t in tokenize(phrase) if t not in _QUESTION_STOP and not t.isdigit()]
    gloss_words = [w for k in _GLOSS_RE.findall(text) for w in _GLOSSARY[k]] if lang != "en" else []
    ascii_part = paraphrase(_CJK_RUN.sub(" ", outside) if lang != "en" else outside)
    terms = [canonical(t) for t in tokenize(ascii_part + " " + " ".join(gloss_words))
             if t not in _QUESTION_STOP and not re.fullmatch(r"[\d.,]+", t)]
    entities, unknown = _entities(outside if lang != "en" else text, lang)
    kana = tuple(g[0][5:] for g in entities if g[0].startswith("kana:"))
    entities = [g for g in entities if not g[0].startswith("kana:")]
    descriptors = _descriptors(text, entities) if lang == "en" else ()
    owners = tuple(g for g in _owners(text, entities) if g not in descriptors) if (
        answer_type in OWNED_TYPES and lang == "en") else ()
    modifier = _descriptor_terms(text, descriptors) if descriptors else set()
    context = tuple(t for t in terms if t in modifier)
    terms = [t for t in terms if t not in context]
    return QueryAnalysis(
        question=text, answer_type=answer_type, unit=unit, qualifiers=frozenset(quals), years=years,
        source_terms=tuple(dict.fromkeys(source_terms)), source_months=tuple(source_months),
        terms=tuple(dict.fromkeys(terms)), entities=tuple(entities),
        count_nouns=_count_nouns(text) if answer_type == "count" else (), unknown=tuple(unknown), kana=kana,
        rate_subject=_rate_subject(outside) if answer_type == "percent" else (),
        purpose=_purpose(outside) if answer_type == "money" and lang == "en" else (),
        figures=tuple(q for q in figures), lang=lang,
        owners=owners, agents=_agents(text, owners) if answer_type == "money" else (),
        properties=_properties(ascii_part + " " + " ".join(gloss_words), answer_type),
        slot=_slot(text) if answer_type in ENTITY_TYPES else None, context=context, descriptors=descriptors)


def expand_for_retrieval(question: str) -> str:
    """The question plus English glosses of its CJK words, so an English index can match it."""
    if _lang(question) == "en":
        return question
    gloss = [w for k in _GLOSS_RE.findall(question) for w in _GLOSSARY[k]]
    return question + (" " + " ".join(dict.fromkeys(gloss)) if gloss else "")


# --- follow-ups -----------------------------------------------------------------------------------------

_FOLLOW_START = re.compile(r"^(?:and|but|also|so|then|what about|how about|what of|and what about|and how about|"
                           r"same for|same question for|ok(?:ay)?|and for|now)\b|^(?:那么?|那个|还有|另外|じゃあ|では|"
                           r"それでは|それは|また)", re.I)
_FOLLOW_END = re.compile(r"(?:呢|は|では|の場合は|はどう|はどうですか)\s*[?？]?\s*$")
_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|that|this|those|these|he|she|his|her)\b|它|他们|其|それ|その|彼",
                      re.I)
_ABOUT = re.compile(r"^(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*[?？.!]*$|^(?:and|also)\s+(?:for\s+)?(.+?)\s*[?？.!]*$|"
                    r"^(?:那么?|还有)?(.+?)(?:呢|は|では|はどう(?:ですか)?)\s*[?？]?\s*$", re.I)
_UNIT_ONLY = re.compile(r"^(?:(?:and|but|so|what about|how about|what|how much|is that|converted|convert|"
                        r"expressed|in|into|to|terms|of|the|value|amount|figure|那么?|换成|换算成|用|呢|では|で|は|"
                        r"換算|じゃあ|いくら|ですか|多少)\s*)*(?P<cur>[^\s?？.!]+(?:\s+dollars?)?)"
                        r"(?:\s*(?:terms|then|instead|please|value|呢|では|で|は|換算|ですか|いくら|是多少))*\s*[?？.!]*$",
                        re.I)
_CURRENCY_PHRASE = re.compile(r",?\s*\b(?:in|into|to)\s+(?:u\.?s\.?\s+)?(?:dollar|yen|euro|yuan|pound)s?(?:\s+terms)?\b|"
                              r"\b(?:converted|expressed)\s+(?:to|in|into)\s+(?:u\.?s\.?\s+)?\w+\b,?|"
                              r"\bin\s+(?:usd|jpy|eur|cny|gbp)\b|(?:美元|日元|ドル|円)(?:で|换算)?", re.I)
_PREP = re.compile(r"\b(into|for|on|toward|towards|to|at|about|with|in)\b\s+(?!(?:yen|dollars?|euros?|total)\b)",
                   re.I)
_YEAR_ONLY = re.compile(r"^(?:and|what about|how about)?\s*(?:in|for|during)?\s*(\d{4})\s*[?？.!]*$", re.I)


def _is_standalone(question: str) -> bool:
    if _FOLLOW_START.search(question) or _FOLLOW_END.search(question):
        return False
    a = analyze(question)
    content = len(a.terms) + len(a.entities) + len(a.unknown)
    if _PRONOUN.search(question) and content <= 2:
        return False
    return content >= 2


def _entity_to_replace(prev: str, new_entities: Sequence[tuple[str, ...]]) -> str | None:
    """The surface form of the previous question's entity a "what about X" follow-up swaps out."""
    pa = analyze(prev)
    new = {f for g in new_entities for f in g}
    candidates = [g for g in pa.entities if not (set(g) & new)]
    specific = [g for g in candidates if not (set(g) & _GENERIC_PLACES)] or candidates
    if not specific:
        return None
    target = specific[-1]
    for form in sorted(target, key=len, reverse=True):
        m = re.search(rf"(?<!\w){re.escape(form)}(?:'s|’s)?(?!\w)", prev, re.I)
        if m:
            return m.group()
    return None


def _swap_unit(prev: str, currency_text: str) -> str:
    base = _CURRENCY_PHRASE.sub("", prev).rstrip(" ?？.!")
    base = re.sub(r"\bhow many\s+(?:dollars|yen|euros|yuan)\b", "how much", base, flags=re.I)
    if _lang(currency_text) != "en":
        return f"{base} {currency_text}?"
    return f"{base} in {currency_text}?"


def _resolve_one(question: str, prev: str) -> str:
    q = " ".join(question.split())
    unit = _UNIT_ONLY.match(q)
    if unit and _unit_asked(unit.group("cur")):
        return _swap_unit(prev, unit.group("cur"))
    year = _YEAR_ONLY.match(q)
    if year:
        if re.search(r"\b\d{4}\b", prev):
            return re.sub(r"\b\d{4}\b", year.group(1), prev, count=1)
        return prev.rstrip(" ?？.!") + f" in {year.group(1)}?"
    about = _ABOUT.match(q)
    topic = next((g for g in (about.groups() if about else ()) if g), None)
    if topic and len(topic.split()) <= 6 and not _PRONOUN.search(topic) and not re.search(
            r"\b(?:what|how|which|who|when|where|why)\b", topic, re.I):
        topic_a = analyze(f"What about {topic}?")
        entity_words = {t for g in topic_a.entities for f in g for t in tokenize(f)}
        if topic_a.entities and set(topic_a.terms) <= entity_words:
            old = _entity_to_replace(prev, topic_a.entities)
            if old:
                return prev.replace(old, topic.strip() + ("'s" if old.endswith(("'s", "’s")) else ""), 1)
        if not topic_a.figures:
            m = None
            for m in _PREP.finditer(prev):
                if m.start() > len(prev) // 4:
                    break
            if m is not None and m.start() > len(prev) // 4:
                return prev[:m.end()] + topic.strip().rstrip("?？") + "?"
    sep = " " if prev.rstrip().endswith(("?", "？", ".", "!")) else "? "
    return prev.rstrip() + sep + q


def resolve_followup(question: str, history: Sequence[Turn]) -> str:
    """A standalone question: a follow-up ("and in dollars?", "what about X?") is rewritten against the
    previous user question; a question that already stands alone is returned unchanged."""
    users = [t.content for t in history if getattr(t, "role", "user") == "user" and str(t.content).strip()]
    if not users or not question or not question.strip():
        return question
    try:
        if _is_standalone(question):
            return question
        prev = users[0]
        for i in range(1, len(users)):  # earlier turns may be follow-ups themselves
            prev = users[i] if _is_standalone(users[i]) else _resolve_one(users[i], prev)
        return _resolve_one(question, prev)
    except (re.error, ValueError, IndexError):
        return question
