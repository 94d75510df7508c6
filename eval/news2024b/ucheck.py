"""Search all 160 corpus texts for the distinctive terms of each unanswerable item and print every hit,
so that a reader can confirm no article answers it. Usage: python3 ucheck.py [id ...]"""
import json, gzip, re, sys
ids=open('articles.txt').read().split()
C={}
for l in gzip.open('/work/shared/benchmarks/news-2024/articles.jsonl.gz','rt'):
    a=json.loads(l)
    if a['id'] in ids: C[a['id']]=a['text']
# id -> regex of distinctive terms (case-insensitive)
T={
'b006':r'Feed the Need', 'b010':r'marathon trials?.{0,200}(won|winner|victor)|won the (men|women)',
'b013':r'Ernesto', 'b022':r'High North|Arctic.{0,80}troops', 'b027':r'International Legion|Americans.{0,60}(fight|volunteer)',
'b032':r'cowl|737 NG', 'b038':r'carrot', 'b048':r'buoy', 'b053':r"Emily.s List", 'b071':r'Gorillas',
'b087':r'Astrobotic|Peregrine', 'b096':r'JPMorgan.{0,200}(accounts?|customers)', 'b114':r'Deep Space Network',
'b117':r'Laurel.{0,300}science|science proficien', 'b135':r'Oklahoma.{0,200}abortions (were )?performed|abortions in Oklahoma',
'b141':r'Whispering Pines|per night|a night', 'b156':r'teacher (pay|salar)', 'b169':r'commercial propert',
'b179':r'independent voters|independents', 'b196':r'Benedict.{0,400}(China|Chinese|Beijing)',
'b216':r'Blakinger.{0,200}(sentence|years)|sentenced', 'b228':r'smok', 'b247':r'drone.{0,80}(sightings|reports)',
'b279':r'approval rating|\d+% approv', 'b294':r'roundtable', 'b305':r'viewers|ratings', 'b317':r'Brisbane.{0,300}(budget|cost|\$)',
'b381':r'Mid Bedfordshire|by-election', 'b406':r'Rafah|aid trucks?|trucks', 'b428':r'dissent|Alito|Thomas|Kavanaugh|Barrett|Gorsuch|Roberts',
'b441':r'Kate Spade.{0,200}(sold|sale|\$)', 'b449':r'medical (bills|expenses)', 'b459':r'(cit(ed|ations)|fine[sd]?).{0,100}camping|camping fines',
'b481':r'running mate|vice presidential pick|VP pick', 'b498':r'baggage handler', 'b513':r'visitors.{0,100}(volcano|eruption|Mauna|Kilauea)|Volcanoes National Park',
'b519':r'Mariupol.{0,300}(killed|dead|death toll)', 'b528':r'conservation.{0,150}\$|\$.{0,100}conservation', 'b536':r'steering wheel lock',
'b550':r'inches of rain.{0,200}Delaware|Delaware.{0,200}inches of rain', 'b551':r'homes.{0,100}flooded|flooded.{0,60}homes',
'b562':r'Gazprom', 'b576':r'championship ring', 'b577':r'Yellowstone.{0,200}2022|2022.{0,200}Yellowstone',
'b578':r'Eminem.{0,300}(induct|present|speech)', 'b579':r'supporting actress|Oscar', 'b580':r'Chemours.{0,200}(shares|stock|\$\d)',
}
want=sys.argv[1:] or sorted(T)
for i in want:
    rx=re.compile(T[i],re.I|re.S); hits=[]
    for d,t in C.items():
        for m in rx.finditer(t):
            s=max(0,m.start()-80); hits.append((d,t[s:m.end()+80].replace('\n',' ')))
    print(f'== {i} /{T[i]}/ {len(hits)} hits')
    for d,c in hits[:8]: print('   ',d,'|',c)
