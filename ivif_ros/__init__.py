"""ivif_ros: infrared-visible image fusion for ROS 2.

The hand-written Python package and the rosidl-generated ``ivif_ros.msg`` live in
different directories when the project runs from a source checkout (messages are
generated into site-packages or a colcon install tree). ``extend_path`` lets
``import ivif_ros.msg`` find the generated half wherever it was installed.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = "0.1.0"
