"""Shared fixtures for tests that use real ROS 2 (rclpy over Fast DDS).

``ros_env``       session-wide: an isolated ROS domain, log dir and DDS transport, set in
                  this process's ``os.environ`` and returned as a dict for subprocesses
                  (pass it to ``ros_harness.ros_process``).
``rclpy_context`` per test: an initialised ``rclpy.Context`` in that environment,
                  shut down afterwards.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The shared helpers (harnesses, stand-in publishers, reference code) live in test/support;
# the tests in test/unit, test/ros and test/build import them by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from ros_harness import make_ros_env  # noqa: E402


@pytest.fixture(scope="session")
def ros_env(tmp_path_factory) -> dict[str, str]:
    env = make_ros_env(tmp_path_factory.mktemp("ros_log"))
    saved = dict(os.environ)
    os.environ.update(env)  # rclpy.init reads the domain and transport from os.environ
    yield env
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def rclpy_context(ros_env):
    import rclpy  # imported here so that tests without ROS do not pay for it

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)
