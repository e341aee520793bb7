"""End to end: the whole path under closed-loop load, side by side with stock Rasa.

Usage: python -m bench.e2e [--quick] [--people 1000] [--in-flight 50]
       [--per-person N] [--databases sqlite postgresql] [--postgres-url URL]
       [--db-prefix P] [--stock-model PATH] [--no-stock] [--port-base PORT]
       [--timeout S] [--keep] [--telegram-per-second 1000]
       [--telegram-chat-per-second 1000]

For each database (a SQLite file; a PostgreSQL database created for the run and
dropped after) and each number of people, it starts on 127.0.0.1 ports from
--port-base: the action server, Rasa (our model, the SQL tracker store in that
database) and one gateway (`python -m bot`), with the real python-telegram-bot
and twilio clients pointed at local fakes of Telegram's and Twilio's APIs
(bench.soak.stack). The people (bench.soak.people: FAQ, the eligibility form,
full registrations with e-mail codes and NIK checks, handoffs; half SMS, half
Telegram) type 50 at a time (--in-flight; each replaced by the next when its
script ends, so 50 stay in flight to the end), each waiting for the whole
answer before the next message (closed loop, no think time): signed webhooks
into the gateway, replies collected at the fakes. The defaults are issue 13's
load: 1,000 people, 50 in flight, Telegram's pacing raised to 1,000 a second
(people who write again at once would otherwise wait for Telegram's one
message a second per chat). With no think time the time to reply follows from
the messages a second: with 50 people in flight at X messages a second, a
message's cycle (its answer, and the bench's look that the turn is over) lasts
50 / X seconds on average (Little's law). Then the same people's messages go
straight to Rasa's REST webhook (our model), and to stock Rasa 3.6 (`rasa
init`'s default config trained on our data: bench/e2e/stock.py, the same action
server and tracker store) on its REST webhook.

Each phase reports messages per second, time to reply p50/p95/p99 (post to the
first reply) and CPU seconds per message of each process (gateway, Rasa, action
server, PostgreSQL's backends for the run's database, this load generator);
Rasa runs under bench.e2e.rasa_timed, so the report also says where Rasa's time
goes per message (NLU and each component, policies, tracker store load and save,
action server round trips). Results go to results/bench/e2e.json, a Markdown
summary to stdout, with the time to reply per kind of turn (where the p95
comes from). --quick: SQLite, 20 people, all at once, 3 messages each (and
stock Rasa only if its model is already cached).
"""
