"""The stable front door: one address per granularity that always answers with the
champion (``contract`` the HTTP contract, ``router`` which model server answers and why,
``app`` the FastAPI application). No ZenML here: ``infra.frontdoor_server`` binds the router to
the registry and the model deployer."""
