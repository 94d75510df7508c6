"""Cross-document check: for each answerable item, list other corpus articles that contain its text answer,
or the figure as written in the note, together with at least two of the question's content words."""
import json, gzip, re, sys
ids=open('articles.txt').read().split()
C={}
for l in gzip.open('/work/shared/benchmarks/news-2024/articles.jsonl.gz','rt'):
    a=json.loads(l)
    if a['id'] in ids: C[a['id']]=a['text']
STOP=set('what which who whom how many much when where does did the a an of in on at for to and or by with was were is are from his her its their this that per according has had have be been s 2014 2015 2016 2017 2018 2019 2020 2021 2022 2023 2024 us new year first'.split())
fn=sys.argv[1] if len(sys.argv)>1 else 'questions.jsonl'
for l in open(fn):
    r=json.loads(l)
    if not r['answerable']: continue
    qw=[w for w in re.findall(r"[a-z]{4,}",r['question'].lower()) if w not in STOP]
    keys=[]
    keys+= r['text']
    for m in re.findall(r'\$?\d[\d,.]*\d(?: (?:million|billion|trillion|percent))?|\$\d',r['note']):
        keys.append(m)
    for d,t in C.items():
        if d in r['doc_ids']: continue
        tl=t.lower()
        kw=sum(1 for w in set(qw) if w in tl)
        for k in r['text']:
            if k in t and kw>=2: print(r['id'],'TEXT',repr(k),'in',d,'kw',kw)
        if r['figures'] and not r['text']:
            for f in r['figures']:
                pass
