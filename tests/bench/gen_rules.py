#!/usr/bin/python3
"""Writes a synthetic pack of N rules (default 500) for the matcher benchmark.

Each rule looks like a real one: a few two-character words from a list,
some gap, another word (`(?:甲乙|丙丁|戊己).{0,3}庚辛`), with a matching
example. The words come from common CJK characters, so some of them do
occur in real chat text and the prefilter has real work to do.

usage: gen_rules.py OUTDIR N [BASEDIR]

With BASEDIR (the default pack), its files are copied too and only enough
synthetic rules are written to make N rules in all.
"""

import glob
import os
import random
import shutil
import sys

# Common characters of chat text (and so of the corpus), plus rarer ones.
COMMON = ("的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会"
          "家可下而过天去能对小多然于心学么之都好看起发当没成只如事把还用第样道想作种开美总从无"
          "情己面最女但现前些所同日手又行意动方期它头经长儿回位分爱老因很给名法间斯知世什两次使"
          "身者被高已亲其进此话常与活正感见明问力理尔点文几定本公特做外孩相西果走将月十实向声车"
          "全信重三机工物气每并别真打太新比才便夫再书部水像眼等体却加电主界门利海受听表德少克代"
          "员许先口由死安写性马光白或住难望教命花结乐色更拉东神记处让母父应直字场平报友关放至"
          "张认接告入笑内英军候民岁往何度山觉路带万男边风解叫任金快原吃妈变通师立象数四失满战远"
          "格士音轻目条呢病始达深完今提求清王化空业思切怎非找片罗钱紫吗语元喜曾离飞科言干流欢约"
          "各即指合反题必该论交终林请医晚制球决传画保读运及则房早院量苦火布品近坐产答星精视五"
          "连司巴奇管类未朋且婚台夜青北队久乎越观落尽形影红爸百令周吧识步希亚术留市半热送兴造谈"
          "容极随演收首根讲整式取照办强石古华拿计您装似足双妻尼转诉米称丽客南领节衣站黑刻统断"
          "福城故历惊脸选包紧争另建维绝树系伤示愿持千史谁准联妇纪基买志静阿诗独复痛消社算")


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    rnd = random.Random(500)
    os.makedirs(out, exist_ok=True)
    if len(sys.argv) > 3:
        for path in sorted(glob.glob(os.path.join(sys.argv[3], "*.yaml"))):
            shutil.copy(path, out)
            with open(path, encoding="utf-8") as f:
                n -= sum(1 for line in f if line.startswith("- rule:"))

    def word():
        return rnd.choice(COMMON) + rnd.choice(COMMON)

    with open(os.path.join(out, "synthetic.yaml"), "w", encoding="utf-8") as f:
        for i in range(n):
            heads = [word() for _ in range(rnd.randint(1, 4))]
            tail = word()
            f.write(f"- rule: synthetic.r{i:03d}\n")
            f.write("  category: synthetic\n  severity: info\n  action: flag\n")
            f.write(f"  pattern: '(?:{'|'.join(heads)}).{{0,3}}{tail}'\n")
            f.write(f"  examples:\n    match: ['{heads[0]}的{tail}']\n")


if __name__ == "__main__":
    main()
