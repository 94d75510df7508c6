"""Corpus selection for news2024b: seeded random sample of 160 mostly-English news-prose articles,
2,000-15,000 chars, same filters as ../news2024/sample.py, excluding every id of ../news2024/articles.txt.
Run from this folder: python3 sample.py  (rewrites articles.txt)."""
import gzip, json, re, random, os
SRC='/work/shared/benchmarks/news-2024/articles.jsonl.gz'
arts=[json.loads(l) for l in gzip.open(SRC,'rt')]
STOP=set("the of and to in a is that for on with as was at by it from he she said has have be are an this which".split())
PAYWALL=re.compile(r"subscribe to (continue|read)|already a subscriber|to continue reading|sign in to read|create a free account to|this content is for subscribers|please enable javascript|access denied|are you a robot",re.I)
def ok(a):
    t=a['text']
    if not (2000<=len(t)<=15000): return False
    lines=[l for l in t.split('\n') if l.strip()]
    words=re.findall(r"[A-Za-z']+",t)
    sw=sum(1 for w in words if w.lower() in STOP)/max(1,len(words))
    prose=sum(len(l) for l in lines if len(l)>=120)/len(t)   # share of text in prose-length lines
    ascii_ratio=sum(1 for c in t if ord(c)<128)/len(t)
    return sw>=0.22 and prose>=0.6 and ascii_ratio>=0.97 and not PAYWALL.search(t)
# the earlier set's corpus is excluded
PREV=set(open('../news2024/articles.txt').read().split())
# manual exclusions after skimming (navigation/list/paywall pages that passed the heuristics), one id a line
MANUAL_SKIP=set(l.split('#')[0].strip() for l in open('manual_skip.txt') if l.split('#')[0].strip()) if os.path.exists('manual_skip.txt') else set()
cands=sorted(a['id'] for a in arts if ok(a) and a['id'] not in PREV)
rng=random.Random(2025)
rng.shuffle(cands)
chosen=[i for i in cands if i not in MANUAL_SKIP][:160]
print(len(arts),'articles;',len(cands),'eligible (pass filters, not in news2024); chosen',len(chosen),'; manual skips',len(MANUAL_SKIP))
open('articles.txt','w').write('\n'.join(chosen)+'\n')
