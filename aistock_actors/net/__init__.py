"""Network adapters: remote kill switch, health reports, webhooks, /metrics and /healthz."""
