"""Validate questions.jsonl (default; ids b###, with the minimums of the brief) or extra_questions.jsonl (ids x###) against the 160-article corpus.
Usage: python3 check.py [questions.jsonl|extra_questions.jsonl]"""
import json, gzip, re, collections, sys
C={}
for l in gzip.open('/work/shared/benchmarks/news-2024/articles.jsonl.gz','rt'):
    a=json.loads(l); C[a['id']]=a
ids=[x.strip() for x in open('articles.txt') if x.strip()]
assert len(ids)==160 and len(set(ids))==160, 'corpus size'
corpus=set(ids)
KINDS={'money','percent','count','date','year','person','organization','place','list','explanation','trap','unanswerable'}
CUR={'USD','EUR','GBP','JPY','INR','CNY','CAD','AUD','CHF','RUB','KRW','NZD','MXN','BRL','HKD','SGD','ZAR','LKR','SEK','NOK','ILS','TRY','UAH','PHP','IDR','MYR','TWD'}
errs=[]; recs=[]
FN=sys.argv[1] if len(sys.argv)>1 else 'questions.jsonl'
PFX='x' if 'extra' in FN else 'b'
for n,line in enumerate(open(FN),1):
    try: r=json.loads(line)
    except Exception as e: errs.append(f'line {n}: bad JSON {e}'); continue
    recs.append(r); i=r.get('id')
    need={'id','question','kind','lang','answerable','figures','text','doc_ids','group','note'}
    if set(r)!=need: errs.append(f'{i}: fields {set(r)^need}')
    if r['id']!=f'{PFX}{n:03d}': errs.append(f'{i}: id sequence')
    if r['kind'] not in KINDS: errs.append(f'{i}: kind {r["kind"]}')
    if r['lang']!='en': errs.append(f'{i}: lang')
    if r['group'] not in corpus: errs.append(f'{i}: group not in corpus')
    for d in r['doc_ids']:
        if d not in corpus: errs.append(f'{i}: doc {d} not in corpus')
    for f in r['figures']:
        if not isinstance(f.get('value'),(int,float)) or f['value']<0: errs.append(f'{i}: figure value {f}')
        u=f.get('unit')
        if r['kind']=='money' and u not in CUR: errs.append(f'{i}: currency {u}')
        if u=='date' and not re.fullmatch(r'(1[6-9]|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])',str(f['value'])): errs.append(f'{i}: date {f}')
        if u=='year' and not 1<=f['value']<=2100: errs.append(f'{i}: year {f}')
        if u=='%' and not 0<=f['value']<=1000: errs.append(f'{i}: pct {f}')
    if r['answerable']:
        if r['kind']=='unanswerable': errs.append(f'{i}: answerable unanswerable')
        if not r['doc_ids']: errs.append(f'{i}: no doc_ids')
        if r['group'] not in r['doc_ids']: errs.append(f'{i}: group not among doc_ids')
        if not (r['figures'] or r['text']): errs.append(f'{i}: no figures/text')
        if r['kind'] in ('money','percent','count','date','year','trap') and not r['figures']: errs.append(f'{i}: numeric kind without figures')
        if r['kind'] in ('person','organization','place','explanation','list') and not r['text']: errs.append(f'{i}: no text')
        units=[f['unit'] for f in r['figures']]
        want={'percent':{'%'},'year':{'year'},'date':{'date'}}.get(r['kind'])
        if want and set(units)-want: errs.append(f'{i}: unit {units} for kind {r["kind"]}')
        if r['kind']=='money' and set(units)-CUR: errs.append(f'{i}: money unit {units}')
        if r['kind']=='trap':
            nums=re.findall(r'\d[\d,.]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\b',r['note'],re.I)
            if len(nums)<2: errs.append(f'{i}: trap note has <2 figures')
        # numeric answer should appear in the note (as digits, with/without commas, or scaled)
        for f in r['figures']:
            v=f['value']; u=f['unit']
            if u=='date': continue
            cands=set()
            for scale,word in ((1,''),(1e3,'thousand'),(1e6,'million'),(1e9,'billion'),(1e12,'trillion')):
                x=v/scale
                if x>=1 or scale==1:
                    xs=('%g'%x) if x!=int(x) else str(int(x))
                    cands|={xs,'{:,}'.format(int(x)) if x==int(x) else xs}
                    if x==int(x): cands.add('{:,}'.format(int(x)))
            words={1:'one',2:'two',3:'three',4:'four',5:'five',6:'six',7:'seven',8:'eight',9:'nine',10:'ten',11:'eleven',12:'twelve',15:'fifteen',16:'sixteen',50:'fifty',26:'26'}
            ONES='zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen'.split()
            TENS='_ _ twenty thirty forty fifty sixty seventy eighty ninety'.split()
            def spell(n):
                n=int(n)
                if n<20: return [ONES[n]]
                if n<100: return [TENS[n//10]+('' if n%10==0 else '-'+ONES[n%10])]
                return []
            if v==int(v) and v<100: cands|=set(spell(v))
            if v in words: cands.add(words[v])
            if v/1e6 in words: cands.add(words[v/1e6]+' million')
            nl=r['note'].lower().replace(',', ',')
            if not any(c.lower() in nl for c in cands): errs.append(f'{i}: figure {v} not visible in note')
        t=C[r['group']]['text']
        if r['note'] not in t: errs.append(f'{i}: note not verbatim in {r["group"]}')
        for s in r['text']:
            if s not in r['note']: errs.append(f'{i}: text {s!r} not in note')
            for d in r['doc_ids']:
                if s not in C[d]['text']: errs.append(f'{i}: text {s!r} not in doc {d}')
        # question must not copy the note: longest common word run
        qw=re.findall(r"\w+",r['question'].lower()); nw=re.findall(r"\w+",r['note'].lower())
        ng=lambda w,k:{tuple(w[j:j+k]) for j in range(len(w)-k+1)}
        if ng(qw,7)&ng(nw,7): errs.append(f'{i}: question copies 7+ words of note')
    else:
        if r['kind']!='unanswerable' or r['figures'] or r['text'] or r['doc_ids']: errs.append(f'{i}: unanswerable fields')
        if not r['note']: errs.append(f'{i}: unanswerable without note')
cnt=collections.Counter(r['kind'] for r in recs)
arts=set(r['group'] for r in recs)
cur=set(f['unit'] for r in recs if r['kind']=='money' for f in r['figures'])
print('items',len(recs),dict(sorted(cnt.items())),'articles',len(arts),'currencies',sorted(cur))
mins=dict(money=35,percent=20,count=30,person=40,organization=25,place=15,explanation=10,trap=25,unanswerable=45)
dup=[q for q,c in collections.Counter(r['question'] for r in recs).items() if c>1]
if dup: errs.append(f'duplicate questions: {dup}')
if PFX=='b':   # the minimums of the brief apply to the main set
    for k,m in mins.items():
        if cnt[k]<m: errs.append(f'below minimum: {k} {cnt[k]}<{m}')
    if cnt['date']+cnt['year']<20: errs.append('below minimum: date+year')
    if len(cur)<3: errs.append(f'fewer than 3 currencies: {sorted(cur)}')
    if len(arts)<140: errs.append(f'only {len(arts)} articles covered (<140)')
print('ERRORS',len(errs)); print('\n'.join(errs))
