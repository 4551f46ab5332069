#!/usr/bin/python3
"""demo_backend: a pretend shop chat backend for `make run` and the tests.

Every agent that connects (through chatmond, ws://HOST:PORT/...?agent=NAME) is
given a few simulated buyer conversations, in Chinese, built from the training
material in shared/seeds/: a pre-sale question about a product, the shipping
time, an invoice request, a return, a buyer who keeps writing 在吗, and a buyer
who threatens a 差评 unless paid. Buyers pause like people do (reading, typing,
waiting for an answer); --speed divides every pause (--speed 50 for tests).

It speaks chatmon's default protocol, one JSON object per text frame:
  buyer -> agent  {"type":"message","conversation":"c-1","text":"在吗"}
  agent -> buyer  {"type":"message","conversation":"c-1","text":"亲,在的"}
  either way      {"type":"end","conversation":"c-1"}
and prints the conversations, agents' replies included, on stdout.
"""

import argparse
import asyncio
import itertools
import json
import random
import sys
from urllib.parse import parse_qs, urlsplit

import websockets

# A scenario is a list of steps:
#   ("say", text)           the buyer writes text
#   ("await", patience_s)   the buyer waits up to patience_s for the agent's reply
#   ("nudge", text, n)      the buyer waits; with no reply after each patience
#                           period writes text again, at most n times
SCENARIOS = {
    "presale": [
        ("say", "你好,这款保温杯是304不锈钢的吗?"),
        ("await", 60),
        ("say", "保温效果怎么样,能保温多久?"),
        ("await", 60),
        ("say", "有没有优惠呀,两个能便宜点吗"),
        ("await", 60),
        ("say", "好的,那我拍两个"),
        ("await", 60),
    ],
    "shipping": [
        ("say", "亲,今天下单什么时候发货?"),
        ("await", 60),
        ("say", "发什么快递?可以发顺丰吗"),
        ("await", 60),
        ("say", "到上海大概要几天"),
        ("await", 60),
        ("say", "好的谢谢"),
    ],
    "invoice": [
        ("say", "我是公司采购,能开增值税发票吗?"),
        ("await", 60),
        ("say", "抬头写公司名称,税号我发给你"),
        ("await", 60),
        ("say", "开发票要不要另外加钱?"),
        ("await", 60),
        ("say", "发票是和货一起寄过来吗"),
        ("await", 60),
    ],
    "return": [
        ("say", "收到了,尺码偏小穿不上"),
        ("await", 60),
        ("say", "可以退货吗?支持七天无理由吧"),
        ("await", 60),
        ("say", "退货运费谁出?"),
        ("await", 60),
        ("say", "好,我在后台申请退货退款了,单号怎么填"),
        ("await", 60),
    ],
    "zaima": [
        ("say", "在吗"),
        ("nudge", "在吗", 3),
        ("say", "这个还有货吗?我要黑色的"),
        ("nudge", "人呢?", 2),
        ("say", "那我下单了"),
    ],
    "chaping": [
        ("say", "看到我发的照片了吗?有瑕疵,有洞"),
        ("await", 60),
        ("say", "我不想退,太麻烦了"),
        ("await", 60),
        ("say", "不补偿的话我就给差评了"),
        ("await", 60),
        ("say", "给我返20块钱,不然差评加投诉"),
        ("await", 60),
    ],
}

conversation_ids = itertools.count(1)


def frame(kind, conversation, text=None):
    f = {"type": kind, "conversation": conversation}
    if text is not None:
        f["text"] = text
    return json.dumps(f, ensure_ascii=False)


class Agent:
    """One connected agent and the conversations the buyers hold with it."""

    def __init__(self, ws, name, speed, rnd):
        self.ws = ws
        self.name = name
        self.speed = speed
        self.rnd = rnd
        self.replies = {}        # conversation -> asyncio.Queue of the agent's texts

    def log(self, conversation, who, text):
        print(f"[{self.name} {conversation}] {who}: {text}", flush=True)

    async def pause(self, seconds):
        await asyncio.sleep(seconds * self.rnd.uniform(0.7, 1.3) / self.speed)

    async def reply(self, conversation, patience):
        """The agent's next reply in conversation, or None after patience seconds."""
        try:
            return await asyncio.wait_for(self.replies[conversation].get(),
                                          patience / self.speed)
        except asyncio.TimeoutError:
            return None

    async def buyer(self, name, steps, start_after):
        await self.pause(start_after)
        conv = f"c-{next(conversation_ids)}"
        self.replies[conv] = asyncio.Queue()
        self.log(conv, "系统", f"买家进入会话 ({name})")
        for step in steps:
            if step[0] == "say":
                await self.pause(1.5 + 0.25 * len(step[1]))     # reading and typing
                self.log(conv, "买家", step[1])
                await self.ws.send(frame("message", conv, step[1]))
            elif step[0] == "await":
                if await self.reply(conv, step[1]) is None:
                    self.log(conv, "系统", "买家等不及了,离开")
                    break
            elif step[0] == "nudge":
                text, times = step[1], step[2]
                while await self.reply(conv, 20) is None and times > 0:
                    times -= 1
                    self.log(conv, "买家", text)
                    await self.ws.send(frame("message", conv, text))
        await self.pause(2)
        self.log(conv, "系统", "会话结束")
        await self.ws.send(frame("end", conv))
        del self.replies[conv]

    async def read(self):
        """Route the agent's frames to the conversations waiting for them."""
        async for message in self.ws:
            try:
                f = json.loads(message)
                conv = f["conversation"]
            except (ValueError, TypeError, KeyError):
                print(f"[{self.name}] (not a chat frame) {message!r:.200}", flush=True)
                continue
            if f.get("type") == "message":
                self.log(conv, "客服", f.get("text", ""))
                if conv in self.replies:
                    self.replies[conv].put_nowait(f.get("text", ""))
            else:
                self.log(conv, "客服", f"<{f.get('type')}>")


async def serve_agent(ws, speed, conversations, seed):
    query = parse_qs(urlsplit(ws.path).query)
    name = query.get("agent", ["?"])[0]
    rnd = random.Random(seed)
    agent = Agent(ws, name, speed, rnd)
    print(f"[{name}] connected on {ws.path}", flush=True)
    names = list(SCENARIOS)[:conversations]
    buyers = [agent.buyer(n, SCENARIOS[n], start_after=i * 3.0) for i, n in enumerate(names)]
    reader = asyncio.create_task(agent.read())
    try:
        await asyncio.gather(*buyers)
        print(f"[{name}] all conversations ended", flush=True)
        await reader
    except websockets.ConnectionClosed:
        pass
    finally:
        reader.cancel()
        print(f"[{name}] disconnected ({ws.close_code})", flush=True)


async def main():
    ap = argparse.ArgumentParser(description="pretend chat backend for chatmon demos and tests")
    ap.add_argument("--listen", default="127.0.0.1:9000", help="HOST:PORT (port 0: any)")
    ap.add_argument("--speed", type=float, default=1.0, help="divide every pause by this")
    ap.add_argument("--conversations", type=int, default=len(SCENARIOS),
                    help=f"buyers per agent (at most {len(SCENARIOS)})")
    ap.add_argument("--seed", type=int, default=None, help="make the pauses repeatable")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")

    async def handler(ws):
        await serve_agent(ws, args.speed, args.conversations, args.seed)

    async with websockets.serve(handler, host.strip("[]"), int(port),
                                ping_interval=None) as server:
        addr = server.sockets[0].getsockname()
        print(f"demo_backend: listening on {addr[0]}:{addr[1]}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
