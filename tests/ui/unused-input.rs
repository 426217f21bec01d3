bp::network! {
    struct Net {
        input x: [4];
        input y: [4];
        let h = linear(x, 3);
        output h;
    }
}

fn main() {}
