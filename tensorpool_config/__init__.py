"""Driver configuration: the reference drivers' TOML keys, environment overrides, defaults.

``load_config(path, env)`` is the one entry point; ``default_config(env)`` is what runs when
no file is given. Every problem is a ``ConfigError`` whose text is one line naming the key.
"""

from tensorpool_config.defaults import DEFAULT_CONFIG_TOML
from tensorpool_config.errors import ConfigError
from tensorpool_config.loader import build_config, default_config, load_config, parse_config
from tensorpool_config.model import (
    AdminSection,
    DriverConfig,
    DriverSection,
    IdRange,
    Policies,
    PoolSpec,
    Profile,
    ShmSection,
    StreamSpec,
    in_ranges,
)
from tensorpool_config.ranges import format_ranges, parse_ranges
from tensorpool_config.rundir import default_run_dir, effective_user_name

__all__ = [
    "DEFAULT_CONFIG_TOML",
    "AdminSection",
    "ConfigError",
    "DriverConfig",
    "DriverSection",
    "IdRange",
    "Policies",
    "PoolSpec",
    "Profile",
    "ShmSection",
    "StreamSpec",
    "build_config",
    "default_config",
    "default_run_dir",
    "effective_user_name",
    "format_ranges",
    "in_ranges",
    "load_config",
    "parse_config",
    "parse_ranges",
]
