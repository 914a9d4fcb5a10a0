"""Load runs that end in a verdict: Locust drives the service (`locust_user`,
`channel`), the ops come back to the master over Locust's messages and go to a
file, and tokenproof checks them as they arrive (`stream`, `live`) and once
settled (`run`). Importing this package starts nothing and patches nothing."""
