"""The HTTP scoring service (``retain serve``, BentoML): a request body becomes the data
contract's tables (``schema``, ``columnar``, ``tables``), requests are handed to the scoring
core (``dispatch``), the scores become the response (``response``); ``service`` wires the
routes, ``guard`` is the ASGI middleware (keys, sizes, readiness), ``served`` holds the
model pair, ``config`` reads the start-up options, ``bento`` builds a Bento."""
