"""Network adapters beside pykka: the asyncio loop thread, HTTP with retries, the monitoring
server, webhook delivery and the watcher watchdog (see :mod:`aistock_actors.net.services`)."""
