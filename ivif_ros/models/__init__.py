"""Fusion networks (``nn.Module``s and builders only; no I/O, CLI or training loop)."""
from ivif_ros.models.student import Student, StudentConfig, build_student
from ivif_ros.models.teacher import Teacher, TeacherConfig, build_teacher

BUILDERS = {"student": build_student, "teacher": build_teacher}

__all__ = ["BUILDERS", "Student", "StudentConfig", "Teacher", "TeacherConfig", "build_student", "build_teacher"]
