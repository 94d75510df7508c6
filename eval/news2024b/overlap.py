"""Show, for each item, the longest run of words its question shares with its note (>= 6)."""
import json,re,sys
for l in open('questions.jsonl'):
    r=json.loads(l)
    if not r['answerable']: continue
    qw=re.findall(r"\w+",r['question'].lower()); nw=re.findall(r"\w+",r['note'].lower())
    best=0;bs=''
    for i in range(len(qw)):
        for j in range(len(nw)):
            k=0
            while i+k<len(qw) and j+k<len(nw) and qw[i+k]==nw[j+k]: k+=1
            if k>best: best=k;bs=' '.join(qw[i:i+k])
    if best>=int(sys.argv[1] if len(sys.argv)>1 else 7): print(r['id'],best,bs)
