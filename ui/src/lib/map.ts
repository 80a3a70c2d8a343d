// The map: OpenStreetMap (or the configured) tiles with attribution, or an
// offline PMTiles archive read through the app (no network request at all),
// over a bundled low-detail world basemap (Natural Earth land, from
// world-atlas) so markers keep their context when tiles cannot load.

import L from "leaflet";
import { PMTiles, type RangeResponse, type Source } from "pmtiles";
import { leafletLayer } from "protomaps-leaflet";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import land110 from "world-atlas/land-110m.json";
import { api } from "./api";
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
  const tiles = config.offline_map ? offlineLayer(config.offline_map, () => handler(false)) : onlineLayer(config);
  tiles.addTo(map);
  tiles.on("tileload", () => {
    if (!loaded) handler(true);
    loaded = true;
  });
  tiles.on("tileerror", () => {
    failures += 1;
    if (!loaded && failures === 4) handler(false);
  });
  return {
    map,
    onTiles: (h) => (handler = h),
    destroy: () => map.remove(),
  };
}

function onlineLayer(config: AppConfig): L.GridLayer {
  return L.tileLayer(config.tiles, {
    attribution: escapeText(config.tile_attribution),
    maxZoom: 19,
    crossOrigin: false,
  });
}

/** The archive chosen in Settings, read in ranges through the app: the
 *  window never learns its path and nothing goes over the network. */
class OfflineArchive implements Source {
  getKey(): string {
    return "waymark-offline-map";
  }

  async getBytes(offset: number, length: number): Promise<RangeResponse> {
    return { data: await api.offlineMapRange(offset, length) };
  }
}

/** Vector tiles from the offline archive, drawn on canvases in the
 *  Protomaps basemap style (light or dark, as the system is). */
function offlineLayer(name: string, unreadable: () => void): L.GridLayer {
  // protomaps-leaflet extends the global Leaflet.
  (window as unknown as { L: typeof L }).L = L;
  const archive = new PMTiles(new OfflineArchive());
  const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  const layer = leafletLayer({
    url: archive,
    flavor: dark ? "dark" : "light",
    lang: "en",
    // Protomaps extracts (and the demo archive) stop at zoom 15; beyond it the
    // vectors are drawn larger.
    maxDataZoom: 15,
    maxZoom: 19,
    attribution: escapeText(`Offline map: ${name}`),
  }) as unknown as L.GridLayer;
  // An archive that cannot be read says so, like tiles that cannot load.
  archive.getHeader().catch(() => unreadable());
  return layer;
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
