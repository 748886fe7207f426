"""The composition root: what ``serve`` runs, wired from the layers below it.

The HTTP app (the REST API with the dashboard mounted beside it), the job executor, and the long-running
LwM2M hosts (the fleet and its campaign runner) are put together here, so no adapter below has to know
about the others.
"""
