"""Dagster resources: the lake (`lakehouse.lake.Lake`) as a resource of every asset and job."""

import dagster as dg

from lakehouse.lake import Lake


class LakeResource(Lake, dg.ConfigurableResource):
    """No fields: the lake's configuration comes from the environment, shared with the CLI and tests."""
