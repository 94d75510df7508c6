"""Turn draft/b*.py (written batch by batch) into questions.jsonl, numbering ids b001... in order."""
import json, glob, gzip, unicodedata
ids_order=open('articles.txt').read().split(); ids=set(ids_order)
C={}
for l in gzip.open('/work/shared/benchmarks/news-2024/articles.jsonl.gz','rt'):
    a=json.loads(l)
    if a['id'] in ids: C[a['id']]=a['text']
def exact(s,g):
    """Some article texts store accents decomposed (NFD); keep the article's exact bytes."""
    if s in C[g]: return s
    for form in ('NFD','NFC'):
        t=unicodedata.normalize(form,s)
        if t in C[g]: return t
    return s
items=[]
def A(g,kind,q,note,figs=(),text=(),docs=()):
    items.append(dict(question=q,kind=kind,lang='en',answerable=True,
        figures=[{'value':v,'unit':u} for v,u in figs],text=[exact(t,g) for t in text],
        doc_ids=[g]+[d for d in docs if d!=g],group=g,note=exact(note,g)))
def U(g,q,note):
    items.append(dict(question=q,kind='unanswerable',lang='en',answerable=False,figures=[],text=[],doc_ids=[],group=g,note=note))
for f in sorted(glob.glob('draft/b*.py')):
    exec(open(f).read(),{'A':A,'U':U})
# Durations keep their unit (FORMAT.md: measures keep their unit), as in ../news2024: a count figure
# written in the note as "N years/days/minutes" becomes unit years/days/minutes.
import re
for r in items:
    for f in r['figures']:
        if f['unit']=='count':
            v=f['value']; vs='{:,}'.format(int(v)) if v==int(v) else str(v)
            m=re.search(r'(?<![\d,.])'+re.escape(vs)+r'[ -](day|year|minute|hour)s?\b',r['note'])
            if m: f['unit']=m.group(1)+'s'
# Selection: every unanswerable item is kept; of the answerable items, at most CAP per article (group),
# chosen greedily (articles in corpus order, items in draft order) to favour the kinds that are furthest
# below their minimums, a second kind different from the first, and non-USD money. The items not selected
# go to extra_questions.jsonl (ids x001...), validated by the same checker.
import collections, sys
CAP=2
MINS=dict(money=35,percent=20,count=30,person=40,organization=25,place=15,explanation=10,trap=25,date=10,year=10)
total=collections.Counter(r['kind'] for r in items)
cnt=collections.Counter(); keep=set()
by=collections.defaultdict(list)
for n,r in enumerate(items):
    if r['answerable']: by[r['group']].append(n)
    else: keep.add(n)
def score(n,picked):
    r=items[n]; k=r['kind']
    sc=(MINS.get(k,0)-cnt[k])/max(1,total[k])
    if k not in [items[p]['kind'] for p in picked]: sc+=0.5
    if any(f['unit'] not in ('USD',) and k=='money' for f in r['figures']): sc+=5
    return sc
for g in ids_order:
    pool=list(by.get(g,[])); picked=[]
    while pool and len(picked)<CAP:
        pool.sort(key=lambda n:(-score(n,picked),n))
        n=pool.pop(0); picked.append(n); cnt[items[n]['kind']]+=1
    keep|=set(picked)
def write(fn,prefix,sel):
    with open(fn,'w') as out:
        for k,n in enumerate(sel,1):
            out.write(json.dumps({'id':f'{prefix}{k:03d}',**items[n]},ensure_ascii=False)+'\n')
main=[n for n in range(len(items)) if n in keep]; extra=[n for n in range(len(items)) if n not in keep]
write('questions.jsonl','b',main); write('extra_questions.jsonl','x',extra)
print(len(items),'items drafted;',len(main),'in questions.jsonl;',len(extra),'in extra_questions.jsonl')
