"""Draws the demo's offline map: a small PMTiles v3 archive of Mapbox Vector
Tiles (Protomaps basemap layer names, so the app renders it with the same
style as a real Protomaps extract) covering the demo routes' areas.

There is no map data on this machine and no internet, so the map is made
from what Waymark knows: the built-in routes (printed by `waymark-watch
route`) become named streets, the park loop encloses a park, the two cities
get a label, and a regular grid of unnamed side streets fills each area so the
markers have streets around them. None of it is real geography: it is a demo
map, and its metadata says so.

Usage: make.py WATCH_BINARY OUT.pmtiles
Written with the `pmtiles` writer and `mapbox-vector-tile` encoder (PyPI).
"""

import gzip
import json
import math
import subprocess
import sys

import mapbox_vector_tile
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
import shapely
from shapely.geometry import LineString, Point, Polygon, box, mapping

MAX_ZOOM = 15
EXTENT = 4096
R = 6378137.0
HALF = math.pi * R

ROUTES = [
    ("builtin:park-loop", "Park loop"),
    ("builtin:school-run", "School run"),
    ("builtin:harbour-walk", "Harbour walk"),
]
PLACES = [("Berlin", 13.4050, 52.5200), ("Hamburg", 9.9937, 53.5511)]
# Around each area, so the map has room beyond the paths.
PAD_DEG = 0.03
# The made-up side streets: about every 220 m north-south and 200 m east-west.
GRID_LAT = 0.002
GRID_LON = 0.003


def side_streets(areas, park):
    """A grid of unnamed streets over the areas (one grid, aligned to whole
    multiples of its spacing, so overlapping areas share it), leaving the
    park open."""
    region = shapely.union_all([box(*a) for a in areas])
    west, south, east, north = region.bounds
    lines = []
    for k in range(math.floor(south / GRID_LAT), math.ceil(north / GRID_LAT) + 1):
        lines.append(LineString([(west, k * GRID_LAT), (east, k * GRID_LAT)]))
    for k in range(math.floor(west / GRID_LON), math.ceil(east / GRID_LON) + 1):
        lines.append(LineString([(k * GRID_LON, south), (k * GRID_LON, north)]))
    grid = shapely.union_all(lines).intersection(region)
    return grid.difference(park) if park is not None else grid


def merc(lon, lat):
    x = math.radians(lon) * R
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * R
    return (x, y)


def to_mercator(geometry):
    """Web Mercator metres, so tiles quantise linearly."""
    return shapely.transform(geometry, lambda c: [merc(lon, lat) for lon, lat in c])


def tile_bounds(z, x, y):
    size = 2 * HALF / (1 << z)
    return (-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)


def tiles_for(bounds_deg, z):
    west, south, east, north = bounds_deg
    n = 1 << z

    def tx(lon):
        return min(n - 1, max(0, int((lon + 180) / 360 * n)))

    def ty(lat):
        r = math.radians(lat)
        return min(n - 1, max(0, int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)))

    for x in range(tx(west), tx(east) + 1):
        for y in range(ty(north), ty(south) + 1):
            yield x, y


def route_line(watch, spec):
    out = subprocess.run([watch, "route", spec], check=True, capture_output=True, text=True).stdout
    return [tuple(c) for c in json.loads(out)["geometry"]["coordinates"]]


def main():
    watch, out_path = sys.argv[1], sys.argv[2]
    features = {"earth": [], "landuse": [], "roads": [], "places": []}
    areas = []
    park = None
    for spec, name in ROUTES:
        coords = route_line(watch, spec)
        line = LineString(coords)
        features["roads"].append((to_mercator(line), {"kind": "major_road", "name": name}))
        if spec == "builtin:park-loop":
            park = Polygon(coords).buffer(0)
            features["landuse"].append((to_mercator(park), {"kind": "park", "name": "Park"}))
        w, s, e, n = line.bounds
        areas.append((w - PAD_DEG, s - PAD_DEG, e + PAD_DEG, n + PAD_DEG))
    streets = side_streets(areas, park)
    features["roads"].insert(0, (to_mercator(streets), {"kind": "minor_road", "kind_detail": "residential"}))
    for name, lon, lat in PLACES:
        features["places"].append(
            (Point(merc(lon, lat)), {"kind": "locality", "name": name, "min_zoom": 4, "population_rank": 12})
        )

    tiles = {}
    for z in range(MAX_ZOOM + 1):
        for area in areas:
            for x, y in tiles_for(area, z):
                tiles[zxy_to_tileid(z, x, y)] = (z, x, y)

    with open(out_path, "wb") as f:
        writer = Writer(f)
        for tile_id in sorted(tiles):
            z, x, y = tiles[tile_id]
            bounds = tile_bounds(z, x, y)
            buffer = (bounds[2] - bounds[0]) * 64 / EXTENT
            clip = box(bounds[0] - buffer, bounds[1] - buffer, bounds[2] + buffer, bounds[3] + buffer)
            layers = [{"name": "earth", "features": [{"geometry": mapping(box(*bounds)), "properties": {"kind": "earth"}}]}]
            for layer in ("landuse", "roads", "places"):
                kept = []
                for geometry, props in features[layer]:
                    part = geometry.intersection(clip)
                    if not part.is_empty:
                        kept.append({"geometry": mapping(part), "properties": props})
                if kept:
                    layers.append({"name": layer, "features": kept})
            data = mapbox_vector_tile.encode(
                layers, default_options={"quantize_bounds": bounds, "extents": EXTENT, "y_coord_down": False}
            )
            writer.write_tile(tile_id, gzip.compress(data, mtime=0))
        west = min(a[0] for a in areas)
        south = min(a[1] for a in areas)
        east = max(a[2] for a in areas)
        north = max(a[3] for a in areas)
        writer.finalize(
            {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.GZIP,
                "min_lon_e7": int(west * 1e7),
                "min_lat_e7": int(south * 1e7),
                "max_lon_e7": int(east * 1e7),
                "max_lat_e7": int(north * 1e7),
                "center_zoom": 13,
                "center_lon_e7": int(13.38 * 1e7),
                "center_lat_e7": int(52.52 * 1e7),
            },
            {
                "name": "Waymark demo map",
                "description": "Generated from Waymark's built-in demo routes and a made-up street grid; not real map data.",
                "attribution": "Waymark demo map (generated)",
                "vector_layers": [{"id": layer, "fields": {}} for layer in features],
            },
        )
    print(f"{out_path}: {len(tiles)} tiles, zoom 0-{MAX_ZOOM}")


if __name__ == "__main__":
    main()
