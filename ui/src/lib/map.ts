// The map: OpenStreetMap (or the configured) tiles with attribution, or an
// offline PMTiles archive read through the app (offline-map.ts; no network
// request at all), over a bundled low-detail world basemap (Natural Earth
// land, from world-atlas) so markers keep their context when tiles cannot load.

import L from "leaflet";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import land110 from "world-atlas/land-110m.json";
import type { AppConfig, Fix } from "./types";

export interface WaymarkMap {
  map: L.Map;
  /** Called with true once any tile loads, false when tiles keep failing. */
  onTiles: (handler: (ok: boolean) => void) => void;
  destroy: () => void;
}

export function createMap(element: HTMLElement, config: AppConfig): WaymarkMap {
  const map = L.map(element, { zoomControl: true, attributionControl: true, worldCopyJump: true }).setView([20, 0], 2);
  // Plain text only: a link in the attribution would lead the app window away.
  map.attributionControl.setPrefix("Leaflet");
  // The world basemap lies under the tiles (Leaflet's tile pane is at
  // z-index 200, vectors at 400): tiles cover it wherever they load.
  const basemap = map.createPane("basemap");
  basemap.style.zIndex = "150";
  const topology = land110 as unknown as Topology<{ land: GeometryCollection }>;
  L.geoJSON(feature(topology, topology.objects.land), {
    pane: "basemap",
    interactive: false,
    style: { color: "#7c8b7a", weight: 0.6, fillColor: "#dfe6d8", fillOpacity: 1 },
  }).addTo(map);
  let handler: (ok: boolean) => void = () => {};
  let loaded = false;
  let failures = 0;
  let removed = false;
  const attach = (tiles: L.GridLayer) => {
    if (removed) return;
    tiles.addTo(map);
    tiles.on("tileload", () => {
      if (!loaded) handler(true);
      loaded = true;
    });
    tiles.on("tileerror", () => {
      failures += 1;
      if (!loaded && failures === 4) handler(false);
    });
  };
  const offline = config.offline_map;
  if (offline) {
    // The vector-tile renderer is loaded only when an offline map is chosen.
    import("./offline-map").then(
      (m) => attach(m.offlineLayer(escapeText(`Offline map: ${offline}`), () => handler(false))),
      () => handler(false),
    );
  } else {
    attach(onlineLayer(config));
  }
  return {
    map,
    onTiles: (h) => (handler = h),
    destroy: () => {
      removed = true;
      map.remove();
    },
  };
}

function onlineLayer(config: AppConfig): L.GridLayer {
  return L.tileLayer(config.tiles, {
    attribution: escapeText(config.tile_attribution),
    maxZoom: 19,
    crossOrigin: false,
  });
}

function escapeText(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A watch's marker: a dot with its accuracy circle and its name. */
export class WatchMarker {
  private readonly circle: L.Circle;
  private readonly dot: L.CircleMarker;

  constructor(
    map: L.Map,
    name: string,
    fix: Fix,
    colour: string,
  ) {
    this.circle = L.circle([fix.lat, fix.lon], {
      radius: fix.acc,
      color: colour,
      weight: 1,
      fillOpacity: 0.12,
      interactive: false,
    }).addTo(map);
    this.dot = L.circleMarker([fix.lat, fix.lon], {
      radius: 8,
      color: "#ffffff",
      weight: 2,
      fillColor: colour,
      fillOpacity: 1,
    })
      .bindTooltip(name, { permanent: true, direction: "top", offset: [0, -8], className: "watch-label" })
      .addTo(map);
  }

  move(fix: Fix, name: string): void {
    this.circle.setLatLng([fix.lat, fix.lon]).setRadius(fix.acc);
    this.dot.setLatLng([fix.lat, fix.lon]).setTooltipContent(name);
  }

  remove(): void {
    this.circle.remove();
    this.dot.remove();
  }

  get latLng(): L.LatLng {
    return this.dot.getLatLng();
  }
}

const PALETTE = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2"];

/** A stable colour per watch, so a child's marker keeps its colour. */
export function colourFor(id: string): string {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length] ?? "#2563eb";
}
