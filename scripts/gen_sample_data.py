# Generates data/sample/nlu.json (the bundled sample data). Run from the repo root.
import json, random
random.seed(7)
def ex(text, intent, ents=()):
    e=[]
    for value, ent in ents:
        i=text.index(value); e.append({"start":i,"end":i+len(value),"value":value,"entity":ent})
    return {"text":text,"intent":intent,"entities":e}
out=[]
greet=["hi","hello","hey there","good morning","good evening","hey","hello there","hi bot","howdy","greetings",
"good afternoon","hiya","hey, how are you","hello, anyone there?","morning!","yo","hi there friend","hello bot, nice to meet you",
"hey hey","good day","hi, I need some help","hello again","heya","what's up","hi team","sup","evening","hello hello","hi!","hey bot"]
out+= [ex(t,"greet") for t in greet]
bye=["bye","goodbye","see you later","see you","talk to you later","good night","bye bye","catch you later","farewell","that's all, bye",
"I'm leaving now","have a nice day","cya","see ya tomorrow","gotta go","bye for now","ok bye","later!","so long","goodbye and thanks for nothing",
"see you soon","night night","I'm done, goodbye","end the chat","quit","take care","until next time","I have to go now","cheers, bye","that is all"]
out+= [ex(t,"goodbye") for t in bye]
aff=["yes","yeah","yep","sure","of course","absolutely","that's right","correct","sounds good","ok","okay","yes please",
"definitely","indeed","right","yes, do it","go ahead","that works","perfect","great, yes","affirmative","uh huh","yup","certainly",
"exactly","fine by me","sure thing","I agree","yes that is correct","alright"]
out+= [ex(t,"affirm") for t in aff]
deny=["no","nope","no thanks","not really","never","no way","I don't think so","don't do that","negative","not now",
"no, that's wrong","absolutely not","nah","please don't","I disagree","no, cancel","not at all","wrong","that's not right","no sir",
"not this time","no, stop","definitely not","I'd rather not","cancel that","no no","nothing like that","that is incorrect","not interested","don't"]
out+= [ex(t,"deny") for t in deny]
sizes=["small","medium","large","family size"]; tops=["pepperoni","mushroom","ham","pineapple","cheese","olive","salami","tuna","spinach","chicken"]
pz=["I want a {s} pizza with {t}","order a {s} {t} pizza","can I get a {s} pizza with extra {t}","one {s} pizza, {t} please",
"I'd like to order a {t} pizza, {s}","get me a {s} {t} pizza","please deliver a {s} pizza with {t}","a {s} pizza topped with {t}",
"I'm hungry, order a {s} {t} pizza","send me a {t} pizza in {s}"]
for i in range(30):
    s=sizes[i%4]; t=tops[(i*3)%10]; tpl=pz[i%10]
    out.append(ex(tpl.format(s=s,t=t),"order_pizza",[(s,"size"),(t,"topping")]))
cities=["Berlin","Paris","London","Madrid","Rome","Lisbon","Vienna","Prague","Oslo","Dublin","Warsaw","Athens"]; dates=["today","tomorrow","on monday","this weekend","tonight","on friday"]
wt=["what's the weather in {c} {d}","will it rain in {c} {d}","weather forecast for {c} {d}","is it going to be sunny in {c} {d}",
"how cold is it in {c} {d}","do I need an umbrella in {c} {d}","tell me the weather in {c} {d}","how warm will {c} be {d}",
"forecast {c} {d}","what is the temperature in {c} {d}"]
for i in range(30):
    c=cities[i%12]; d=dates[(i*5)%6]; tpl=wt[i%10]
    out.append(ex(tpl.format(c=c,d=d),"check_weather",[(c,"city"),(d,"date")]))
people=["two","three","four","five","six","2","4","8"]; times=["7pm","8 pm","noon","tonight","tomorrow at 6","9:30"]
bt=["book a table for {p} at {t}","I need a table for {p} people at {t}","reserve a table for {p} {t}","can you book dinner for {p} at {t}",
"table for {p} at {t} please","make a reservation for {p} people at {t}","we are {p}, book a table at {t}","get us a table for {p} at {t}",
"I'd like to reserve for {p} at {t}","reservation for {p} at {t}"]
for i in range(30):
    p=people[i%8]; t=times[(i*7)%6]; tpl=bt[i%10]
    out.append(ex(tpl.format(p=p,t=t),"book_table",[(p,"people"),(t,"time")]))
thx=["thanks","thank you","thanks a lot","much appreciated","thank you so much","cheers","great, thanks","thx","many thanks","thanks for the help",
"that's helpful, thanks","I appreciate it","thanks bot","awesome, thank you","ty","thank you very much","thanks a bunch","appreciate your help","nice, thanks","thanks again",
"you're the best, thanks","wonderful, thank you","very kind, thanks","thank you kindly","thanks, that helps","big thanks","thanks mate","grateful, thanks","perfect, thanks","thanks a ton"]
out+= [ex(t,"thank_you") for t in thx]
data={"rasa_nlu_data":{"common_examples":out,
 "entity_synonyms":[{"value":"large","synonyms":["family size"]}],
 "regex_features":[{"name":"number","pattern":"\\b[0-9]+\\b"}]}}
json.dump(data,open("data/sample/nlu.json","w"),indent=1)
print(len(out))
