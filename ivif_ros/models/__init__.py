"""Fusion networks and the detector (``nn.Module``s and builders only; no I/O, CLI or training loop)."""

from ivif_ros.models.fastestdet import FastestDet, FastestDetConfig, build_fastestdet
from ivif_ros.models.student import Student, StudentConfig, build_student
from ivif_ros.models.teacher import Teacher, TeacherConfig, build_teacher

#: Sidecar ``architecture`` -> builder taking the sidecar's ``config`` dict.
BUILDERS = {"student": build_student, "teacher": build_teacher, "fastestdet": build_fastestdet}
#: Sidecar ``architecture`` -> the dataclass its ``config`` dict fills.
CONFIGS = {"student": StudentConfig, "teacher": TeacherConfig, "fastestdet": FastestDetConfig}

__all__ = [
    "BUILDERS",
    "CONFIGS",
    "FastestDet",
    "FastestDetConfig",
    "Student",
    "StudentConfig",
    "Teacher",
    "TeacherConfig",
    "build_fastestdet",
    "build_student",
    "build_teacher",
]
