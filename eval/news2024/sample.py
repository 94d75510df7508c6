"""Corpus selection: seeded random sample of 220 mostly-English news-prose articles, 2,000-15,000 chars."""
import gzip, json, re, random
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
# manual exclusions after skimming (navigation/list/paywall/non-news pages that passed the heuristics)
MANUAL_SKIP=set(open('manual_skip.txt').read().split()) if __import__('os').path.exists('manual_skip.txt') else set()
cands=sorted((a['id'] for a in arts if ok(a)))
rng=random.Random(2024)
order=rng.sample(cands,len(cands))
chosen=[i for i in order if i not in MANUAL_SKIP][:220]
print(len(arts),'articles;',len(cands),'pass filters; chosen',len(chosen),'; manual skips',len(MANUAL_SKIP))
open('articles.txt','w').write('\n'.join(chosen)+'\n')
