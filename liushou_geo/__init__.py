"""liushou_geo: map dashboard for a city's care programme for left-behind children."""

__version__ = "0.1.0"
