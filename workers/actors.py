"""Registry of actor modules. The webhook, provisioning and agent actors are added by
their capabilities; each lives in its own module and is imported here."""
