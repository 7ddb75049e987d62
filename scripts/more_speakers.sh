#!/usr/bin/env bash
# Lay out English digit takes by 70 more real speakers, from four public repositories, as
# recorded-speaker folders that `s5rf data speech --recordings` reads
# (docs/results/spoken-digits.md, "Seventy English speakers from other corpora"):
#   iitb/       16 Indian-English speakers x 4 takes of each digit, 8 kHz, end-pointed
#               (Agrim9/Digit-Speech-Recognition, Processed_Data/<digit>/<i>.wav: takes
#               4(s-1)+1 ... 4s are speaker s, as its VQ.py reads them; no licence stated)
#   aps360/     Altai, Gabe, Jack: about 5 takes of each digit, 8 kHz (altainmunkhg/
#               Spoken-Digit-Recognition, self_recorded/; Billy's takes are left out: noise
#               fills their whole second; no licence stated)
#   commands/   51 speakers of Google Speech Commands' digit words, 130 takes, 16 kHz, CC BY 4.0
#               (the subsets in vinsis/speech-commands-recognition and chaeyoung-lee/
#               wids_tutorial; read in Speech Commands' own layout)
# Usage: scripts/more_speakers.sh DEST   (clones into data/<repo>.git where absent; rerun-safe)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: $0 DEST}
mkdir -p "$dest"

repo() {  # repo OWNER/NAME COMMIT -> prints the bare clone's path, cloned where absent
    local git=data/${1#*/}.git
    [ -d "$git" ] || git clone --quiet --bare "https://github.com/$1" "$git"
    git -C "$git" cat-file -e "$2^{commit}"
    echo "$git"
}
digits=(zero one two three four five six seven eight nine)

commit=c38a068f29185747543ea99546d3f67eb52aff39
git=$(repo Agrim9/Digit-Speech-Recognition $commit)
for d in "${!digits[@]}"; do
    for i in $(seq 1 64); do
        out=$dest/iitb/iitb-$(printf %02d $(( (i - 1) / 4 + 1 )))/${digits[d]}/$i.wav
        mkdir -p "$(dirname "$out")"
        git -C "$git" show "$commit:Processed_Data/$d/$i.wav" > "$out"
    done
done

commit=ddd69c6c060f27b3a1fdd7c1e9ebd854889f0b1c
git=$(repo altainmunkhg/Spoken-Digit-Recognition $commit)
git -C "$git" ls-tree -r --name-only $commit self_recorded | grep -E '/(Altai|Gabe|Jack)/' |
while read -r path; do  # self_recorded/<name>/<digit>_<name>_<take>_.wav
    name=$(basename "$(dirname "$path")") file=$(basename "$path")
    out=$dest/aps360/$name/${digits[${file%%_*}]}/$file
    mkdir -p "$(dirname "$out")"
    git -C "$git" show "$commit:$path" > "$out"
done

for source in "vinsis/speech-commands-recognition 53317d51bc2c75de6118ede48b0da06a412a1341 speech_commands_v0.01" \
              "chaeyoung-lee/wids_tutorial 7d028e7211c846244903eb59664087f1fb3e4c07 data/sc09"; do
    read -r name commit folder <<< "$source"
    git=$(repo "$name" "$commit")
    mkdir -p "$dest/commands/${name#*/}"
    git -C "$git" archive "$commit" "$folder" | tar -x -C "$dest/commands/${name#*/}" \
        --wildcards --no-anchored --strip-components="$(tr -cd / <<< "$folder/" | wc -c)" \
        $(for w in "${digits[@]}"; do echo "$w/*"; done)
done
echo "takes: $(find "$dest" -name '*.wav' | wc -l) in $dest (expected 640 iitb + 150 aps360 + 130 commands)"
